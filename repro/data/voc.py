"""PASCAL VOC 2012 (and the offline dataset, written in its layout) and VOC + SBD ``train_aug``.

Layout under the dataset root (the folder the VOC tarball ``VOCtrainval_11-May-2012.tar`` is
extracted into, torchvision's convention)::

    <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png        palette PNG, 255 = boundary/ignore
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    <root>/VOCdevkit/VOC2012/SegmentationScribbles/<id>.png    optional: palette PNG scribbles
    <root>/pascal_2012_scribble/<id>.xml                       optional: ScribbleSup XML scribbles

``voc_aug`` (the 10,582-image ``train_aug`` split) also needs SBD (Hariharan et al., ICCV 2011;
``benchmark.tgz`` extracted into the same root)::

    <root>/benchmark_RELEASE/dataset/{img,cls}/, train.txt, val.txt    read by torchvision SBDataset

``train_aug`` = (VOC train ∪ SBD train ∪ SBD val) − VOC val; an image with a VOC annotation uses it
(it has the ignore boundaries), the others use SBD's ``cls/<id>.mat``. A pre-converted
``VOC2012/SegmentationClassAug/<id>.png`` with ``ImageSets/Segmentation/train_aug.txt`` is used
instead when present.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io
import torchvision

from repro.data.base import (
    DatasetNotFoundError,
    SegmentationDataset,
    read_split_list,
    require_paths,
)
from repro.data.class_names import VOC_CLASSES
from repro.data.palette import read_label_png
from repro.data.scribbles import read_scribblesup_xml
from repro.data.transforms import Transform

VOC_SOURCE = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ (VOCtrainval_11-May-2012.tar)"
SBD_SOURCE = (
    "http://home.bharathh.info/pubs/codes/SBD/download.html (benchmark.tgz, Hariharan et al.)"
)
VOC_LAYOUT = """\
<root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
<root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png
<root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt"""
SBD_LAYOUT = """\
<root>/benchmark_RELEASE/dataset/img/<id>.jpg
<root>/benchmark_RELEASE/dataset/cls/<id>.mat
<root>/benchmark_RELEASE/dataset/{train,val}.txt"""
VOC_SPLITS = ("train", "val", "trainval")


def voc_year_dir(root: Path) -> Path:
    """``<root>/VOCdevkit/VOC2012``."""
    return root / "VOCdevkit" / "VOC2012"


class VOCSegmentationDataset(SegmentationDataset):
    """PASCAL VOC 2012 segmentation (21 classes), read with ``torchvision.datasets.VOCSegmentation``.

    Also reads the offline dataset (same layout, its own ``class_names``).

    Args:
        root: the folder holding ``VOCdevkit/VOC2012``.
        split: ``train``, ``val`` or ``trainval``.
        class_names: defaults to the 21 VOC classes.
        scribble_dir: folder of ``<id>.png`` or ScribbleSup ``<id>.xml`` scribbles; default: the
            first of ``VOC2012/SegmentationScribbles`` and ``<root>/pascal_2012_scribble`` present.
        dataset_name: the name used in messages.
    """

    name = "voc"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        transform: Transform | None = None,
        *,
        class_names: Sequence[str] = VOC_CLASSES,
        with_scribbles: bool = False,
        scribble_dir: str | Path | None = None,
        seed: int = 0,
        dataset_name: str = "voc",
    ) -> None:
        super().__init__(class_names, transform, seed, with_scribbles)
        self.name = dataset_name
        if split not in VOC_SPLITS:
            raise ValueError(
                f"split: expected one of {VOC_SPLITS} for {dataset_name!r}, got {split!r}"
            )
        self.root = Path(root).expanduser()
        self.split = split
        year_dir = voc_year_dir(self.root)
        require_paths(
            dataset_name,
            self.root,
            [
                year_dir / "JPEGImages",
                year_dir / "SegmentationClass",
                year_dir / "ImageSets" / "Segmentation" / f"{split}.txt",
            ],
            VOC_LAYOUT,
            "repro.data.offline.build_offline_dataset()"
            if dataset_name == "offline"
            else VOC_SOURCE,
        )
        # torchvision knows the file naming; it only builds path lists here (download=False).
        voc = torchvision.datasets.VOCSegmentation(
            str(self.root), year="2012", image_set=split, download=False
        )
        self.images = [Path(path) for path in voc.images]
        self.labels = [Path(path) for path in voc.masks]
        self.ids = [path.stem for path in self.images]
        self.scribble_dir = self._find_scribble_dir(scribble_dir)
        if with_scribbles and self.scribble_dir is None:
            raise DatasetNotFoundError(
                dataset_name,
                self.root,
                "<root>/VOCdevkit/VOC2012/SegmentationScribbles/<id>.png  or\n"
                "<root>/pascal_2012_scribble/<id>.xml  (ScribbleSup)",
                "https://jifengdai.org/downloads/scribble_sup/ (ScribbleSup, Lin et al. 2016)",
                "with_scribbles=True but no scribble folder",
            )

    def _find_scribble_dir(self, scribble_dir: str | Path | None) -> Path | None:
        if scribble_dir is not None:
            path = Path(scribble_dir).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(f"scribble_dir: folder not found: {path}")
            return path
        for candidate in (
            voc_year_dir(self.root) / "SegmentationScribbles",
            self.root / "pascal_2012_scribble",
        ):
            if candidate.is_dir():
                return candidate
        return None

    def load_label(self, index: int) -> np.ndarray:
        return read_label_png(self.labels[index])

    def has_scribbles(self) -> bool:
        return self.scribble_dir is not None

    def scribbles(self, index: int) -> np.ndarray:
        index = self._checked_index(index)
        if self.scribble_dir is None:
            raise FileNotFoundError(f"dataset {self.name!r} at {self.root}: no scribble folder")
        image_id = self.ids[index]
        png = self.scribble_dir / f"{image_id}.png"
        if png.is_file():
            return read_label_png(png)
        xml = self.scribble_dir / f"{image_id}.xml"
        if xml.is_file():
            return read_scribblesup_xml(xml, self.class_names)
        raise FileNotFoundError(
            f"dataset {self.name!r}: no scribbles for {image_id!r} in {self.scribble_dir} "
            f"(expected {image_id}.png or {image_id}.xml)"
        )


class VOCAugSegmentationDataset(VOCSegmentationDataset):
    """VOC 2012 + SBD: ``split="train_aug"`` (10,582 images with the full data) or VOC's splits."""

    name = "voc_aug"

    def __init__(
        self,
        root: str | Path,
        split: str = "train_aug",
        transform: Transform | None = None,
        *,
        with_scribbles: bool = False,
        scribble_dir: str | Path | None = None,
        seed: int = 0,
        sbd_root: str | Path | None = None,
    ) -> None:
        if split != "train_aug":
            super().__init__(
                root, split, transform, with_scribbles=with_scribbles,
                scribble_dir=scribble_dir, seed=seed, dataset_name="voc_aug",
            )  # fmt: skip
            self.sbd_masks: dict[int, Path] = {}
            return
        super().__init__(
            root, "train", transform, with_scribbles=False, scribble_dir=scribble_dir,
            seed=seed, dataset_name="voc_aug",
        )  # fmt: skip
        self.split = "train_aug"
        self.with_scribbles = with_scribbles
        year_dir = voc_year_dir(self.root)
        aug_list = year_dir / "ImageSets" / "Segmentation" / "train_aug.txt"
        aug_labels = year_dir / "SegmentationClassAug"
        self.sbd_masks = {}
        if aug_list.is_file() and aug_labels.is_dir():
            self.ids = read_split_list(aug_list)
            self.labels = [aug_labels / f"{image_id}.png" for image_id in self.ids]
        else:
            self._compose_from_sbd(Path(sbd_root) if sbd_root else None)
        self.images = [year_dir / "JPEGImages" / f"{image_id}.jpg" for image_id in self.ids]
        if with_scribbles and self.scribble_dir is None:
            raise FileNotFoundError(f"dataset 'voc_aug' at {self.root}: no scribble folder")

    def _compose_from_sbd(self, sbd_root: Path | None) -> None:
        sbd_root = sbd_root or self.root / "benchmark_RELEASE" / "dataset"
        require_paths(
            "voc_aug",
            self.root,
            [sbd_root / "img", sbd_root / "cls", sbd_root / "train.txt", sbd_root / "val.txt"],
            VOC_LAYOUT + "\n" + SBD_LAYOUT,
            VOC_SOURCE + " and " + SBD_SOURCE,
        )
        voc_dir = voc_year_dir(self.root) / "ImageSets" / "Segmentation"
        voc_train = read_split_list(voc_dir / "train.txt")
        voc_val = set(read_split_list(voc_dir / "val.txt"))
        voc_label = dict(zip(self.ids, self.labels, strict=True))
        sbd = {
            image_set: torchvision.datasets.SBDataset(
                str(sbd_root), image_set=image_set, mode="segmentation", download=False
            )
            for image_set in ("train", "val")
        }
        sbd_mask = {
            Path(mask).stem: Path(mask) for dataset in sbd.values() for mask in dataset.masks
        }
        ids = sorted((set(voc_train) | set(sbd_mask)) - voc_val)
        self.ids = ids
        self.labels = [voc_label.get(image_id, sbd_mask.get(image_id)) for image_id in ids]
        self.sbd_masks = {
            index: sbd_mask[image_id]
            for index, image_id in enumerate(ids)
            if image_id not in voc_label
        }

    def load_label(self, index: int) -> np.ndarray:
        if index in self.sbd_masks:
            # SBD's cls/<id>.mat holds GTcls.Segmentation (0..20, no ignore boundary).
            mat = scipy.io.loadmat(self.sbd_masks[index])
            return np.asarray(mat["GTcls"][0]["Segmentation"][0], dtype=np.uint8)
        return read_label_png(self.labels[index])
