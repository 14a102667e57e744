"""ADE20K SceneParsing, 150 classes (Zhou et al., CVPR 2017), ``ADEChallengeData2016`` layout.

Layout under the dataset root (``ADEChallengeData2016.zip`` extracted into it)::

    <root>/ADEChallengeData2016/images/{training,validation}/<id>.jpg
    <root>/ADEChallengeData2016/annotations/{training,validation}/<id>.png

Annotation value 0 ("other") becomes the ignore label 255 and value ``v`` in 1..150 becomes class
``v - 1`` (the usual ``reduce_zero_label``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.base import SegmentationDataset, require_paths
from repro.data.class_names import ADE20K_CLASSES
from repro.data.palette import IGNORE_INDEX, read_label_png
from repro.data.transforms import Transform

ADE20K_SOURCE = (
    "http://sceneparsing.csail.mit.edu/ (ADEChallengeData2016.zip, MIT Scene Parsing Benchmark)"
)
ADE20K_LAYOUT = """\
<root>/ADEChallengeData2016/images/{training,validation}/<id>.jpg
<root>/ADEChallengeData2016/annotations/{training,validation}/<id>.png  (0 = other, 1..150)"""
ADE20K_SPLIT_FOLDERS = {"train": "training", "val": "validation"}


class ADE20KDataset(SegmentationDataset):
    """ADE20K with 150 classes; ``split`` is ``train`` or ``val``."""

    name = "ade20k"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(ADE20K_CLASSES, transform, seed, with_scribbles=False)
        if split not in ADE20K_SPLIT_FOLDERS:
            raise ValueError(f"split: expected one of {list(ADE20K_SPLIT_FOLDERS)}, got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        base = self.root / "ADEChallengeData2016"
        folder = ADE20K_SPLIT_FOLDERS[split]
        image_dir, label_dir = base / "images" / folder, base / "annotations" / folder
        require_paths("ade20k", self.root, [image_dir, label_dir], ADE20K_LAYOUT, ADE20K_SOURCE)
        self.images = sorted(image_dir.glob("*.jpg"))
        self.labels = [label_dir / f"{path.stem}.png" for path in self.images]
        missing = [path for path in self.labels if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"dataset 'ade20k': {len(missing)} images have no annotation, e.g. {missing[0]}"
            )

    def load_label(self, index: int) -> np.ndarray:
        raw = read_label_png(self.labels[index]).astype(np.int16)
        return np.where(raw == 0, IGNORE_INDEX, raw - 1).astype(np.uint8)
