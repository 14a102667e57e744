"""PASCAL Context, 59 classes + background (Mottaghi et al., CVPR 2014), in MMSegmentation's layout.

Layout under the dataset root (VOC2010 images with the Context labels converted to PNG by the
Detail API, as MMSegmentation's ``tools/dataset_converters/pascal_context.py`` writes them)::

    <root>/VOCdevkit/VOC2010/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2010/SegmentationClassContext/<id>.png    0 = background, 1..59, 255 ignore
    <root>/VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt
    <root>/VOCdevkit/VOC2010/SegmentationScribbles/<id>.png      optional scribbles (PNG)
    <root>/pascal_context_scribble/<id>.xml                       optional ScribbleSup XML
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.base import SegmentationDataset, read_split_list, require_paths
from repro.data.class_names import CONTEXT_59_CLASSES
from repro.data.palette import read_label_png
from repro.data.scribbles import read_scribblesup_xml
from repro.data.transforms import Transform

CONTEXT_SOURCE = (
    "https://cs.stanford.edu/~roozbeh/pascal-context/ (trainval_merged.json / 59-class labels) "
    "with the VOC2010 images from http://host.robots.ox.ac.uk/pascal/VOC/voc2010/"
)
CONTEXT_LAYOUT = """\
<root>/VOCdevkit/VOC2010/JPEGImages/<id>.jpg
<root>/VOCdevkit/VOC2010/SegmentationClassContext/<id>.png  (0 = background, 1..59, 255 = ignore)
<root>/VOCdevkit/VOC2010/ImageSets/SegmentationContext/{train,val}.txt"""


class PascalContextDataset(SegmentationDataset):
    """PASCAL Context with 60 labels: background (0) + the 59 frequent classes (1..59)."""

    name = "context"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        with_scribbles: bool = False,
        scribble_dir: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(CONTEXT_59_CLASSES, transform, seed, with_scribbles)
        if split not in ("train", "val"):
            raise ValueError(f"split: expected 'train' or 'val' for 'context', got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        year_dir = self.root / "VOCdevkit" / "VOC2010"
        split_file = year_dir / "ImageSets" / "SegmentationContext" / f"{split}.txt"
        require_paths(
            "context",
            self.root,
            [year_dir / "JPEGImages", year_dir / "SegmentationClassContext", split_file],
            CONTEXT_LAYOUT,
            CONTEXT_SOURCE,
        )
        self.ids = read_split_list(split_file)
        self.images = [year_dir / "JPEGImages" / f"{image_id}.jpg" for image_id in self.ids]
        self.labels = [
            year_dir / "SegmentationClassContext" / f"{image_id}.png" for image_id in self.ids
        ]
        candidates = [year_dir / "SegmentationScribbles", self.root / "pascal_context_scribble"]
        if scribble_dir is not None:
            candidates = [Path(scribble_dir).expanduser()]
        self.scribble_dir = next((path for path in candidates if path.is_dir()), None)
        if with_scribbles and self.scribble_dir is None:
            raise FileNotFoundError(
                f"dataset 'context': with_scribbles=True but none of {candidates} exists"
            )

    def load_label(self, index: int) -> np.ndarray:
        return read_label_png(self.labels[index])

    def has_scribbles(self) -> bool:
        return self.scribble_dir is not None

    def scribbles(self, index: int) -> np.ndarray:
        index = self._checked_index(index)
        if self.scribble_dir is None:
            raise FileNotFoundError(f"dataset 'context' at {self.root}: no scribble folder")
        image_id = self.ids[index]
        if (self.scribble_dir / f"{image_id}.png").is_file():
            return read_label_png(self.scribble_dir / f"{image_id}.png")
        return read_scribblesup_xml(self.scribble_dir / f"{image_id}.xml", self.class_names)
