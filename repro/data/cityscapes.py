"""Cityscapes fine annotations mapped to the 19 train ids (Cordts et al., CVPR 2016).

Layout under the dataset root (``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip``
extracted into it; torchvision's ``Cityscapes`` convention)::

    <root>/leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Label ids map to train ids with torchvision's ``Cityscapes.classes`` table; ids without a train
id (255 or -1 there) become the ignore label 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torchvision

from repro.data.base import SegmentationDataset, require_paths
from repro.data.class_names import CITYSCAPES_CLASSES
from repro.data.palette import IGNORE_INDEX, read_label_png
from repro.data.transforms import Transform

CITYSCAPES_SOURCE = "https://www.cityscapes-dataset.com/downloads/ (registration required)"
CITYSCAPES_LAYOUT = """\
<root>/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png
<root>/gtFine/{train,val}/<city>/<name>_gtFine_labelIds.png"""


def cityscapes_id_to_train_id() -> np.ndarray:
    """A 256-entry lookup table: Cityscapes label id → train id (255 = ignore)."""
    table = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for cityscapes_class in torchvision.datasets.Cityscapes.classes:
        if 0 <= cityscapes_class.id < 256 and 0 <= cityscapes_class.train_id < 19:
            table[cityscapes_class.id] = cityscapes_class.train_id
    return table


class CityscapesDataset(SegmentationDataset):
    """Cityscapes (fine) with 19 classes, read with ``torchvision.datasets.Cityscapes``."""

    name = "cityscapes"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(CITYSCAPES_CLASSES, transform, seed, with_scribbles=False)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        require_paths(
            "cityscapes",
            self.root,
            [self.root / "leftImg8bit" / split, self.root / "gtFine" / split],
            CITYSCAPES_LAYOUT,
            CITYSCAPES_SOURCE,
        )
        cityscapes = torchvision.datasets.Cityscapes(
            str(self.root), split=split, mode="fine", target_type="semantic"
        )
        # torchvision lists cities in os.listdir order; sort for a reproducible item order.
        pairs = sorted(zip(cityscapes.images, cityscapes.targets, strict=True))
        self.images = [Path(image) for image, _ in pairs]
        self.labels = [Path(targets[0]) for _, targets in pairs]
        self._train_ids = cityscapes_id_to_train_id()

    def load_label(self, index: int) -> np.ndarray:
        return self._train_ids[read_label_png(self.labels[index])]
