"""``build_dataset`` by name and ``find_datasets`` for ``repro doctor``.

Real datasets live under a data root: ``$REPRO_DATA_ROOT`` if set, else ``~/data``, each in its
conventional sub-folder (the folder its official archives are extracted into):

========== ============================ ====================================================
name       sub-folder                   what it must contain (see each loader's docstring)
========== ============================ ====================================================
voc        ``voc/``                     ``VOCdevkit/VOC2012/``
voc_aug    ``voc/``                     ``VOCdevkit/VOC2012/`` + ``benchmark_RELEASE/dataset/``
context    ``pascal_context/``          ``VOCdevkit/VOC2010/`` with ``SegmentationClassContext``
ade20k     ``ade20k/``                  ``ADEChallengeData2016/``
cityscapes ``cityscapes/``              ``leftImg8bit/``, ``gtFine/``
camvid     ``camvid/``                  ``train/``, ``trainannot/``, ``val/``, …
========== ============================ ====================================================

``offline`` is generated on demand (:func:`repro.data.offline.build_offline_dataset`); its
``root`` is the cache folder (default ``$REPRO_CACHE/offline`` or ``~/.cache/repro/offline``).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from repro.data.ade20k import ADE20KDataset
from repro.data.base import SegmentationDataset
from repro.data.camvid import CamVidDataset
from repro.data.cityscapes import CityscapesDataset
from repro.data.context import PascalContextDataset
from repro.data.offline import build_offline_dataset, read_offline_meta
from repro.data.transforms import Transform
from repro.data.voc import VOCAugSegmentationDataset, VOCSegmentationDataset

DATASET_SUBFOLDERS: dict[str, str] = {
    "voc": "voc",
    "voc_aug": "voc",
    "context": "pascal_context",
    "ade20k": "ade20k",
    "cityscapes": "cityscapes",
    "camvid": "camvid",
}
"""Real dataset name → its sub-folder of the data root."""

DATASET_MARKERS: dict[str, tuple[str, ...]] = {
    "voc": ("VOCdevkit/VOC2012/JPEGImages", "VOCdevkit/VOC2012/SegmentationClass"),
    "voc_aug": ("VOCdevkit/VOC2012/JPEGImages", "benchmark_RELEASE/dataset/cls"),
    "context": ("VOCdevkit/VOC2010/JPEGImages", "VOCdevkit/VOC2010/SegmentationClassContext"),
    "ade20k": ("ADEChallengeData2016/images", "ADEChallengeData2016/annotations"),
    "cityscapes": ("leftImg8bit", "gtFine"),
    "camvid": ("train", "trainannot"),
}
"""Paths whose presence means a dataset is there (what ``find_datasets`` checks)."""

DATASET_NAMES: tuple[str, ...] = ("offline", *DATASET_SUBFOLDERS)

_OFFLINE_PARAMETERS = tuple(
    name for name in inspect.signature(build_offline_dataset).parameters if name != "root"
)


def default_data_root() -> Path:
    """``$REPRO_DATA_ROOT`` if set, else ``~/data``."""
    value = os.environ.get("REPRO_DATA_ROOT")
    return Path(value).expanduser() if value else Path.home() / "data"


def dataset_root(name: str, data_root: str | Path | None = None) -> Path:
    """Where dataset ``name`` is looked for: ``<data root>/<its sub-folder>``."""
    if name not in DATASET_SUBFOLDERS:
        raise ValueError(
            f"name: expected a real dataset, one of {list(DATASET_SUBFOLDERS)}, got {name!r}"
        )
    base = Path(data_root).expanduser() if data_root is not None else default_data_root()
    return base / DATASET_SUBFOLDERS[name]


def find_datasets(data_root: str | Path | None = None) -> dict[str, str | None]:
    """For each real dataset, the folder where its layout was found, or ``None``."""
    found: dict[str, str | None] = {}
    for name, markers in DATASET_MARKERS.items():
        root = dataset_root(name, data_root)
        found[name] = str(root) if all((root / marker).exists() for marker in markers) else None
    return found


def _build_offline(
    split: str, root: str | Path | None, transform: Transform | None, **kwargs: Any
) -> SegmentationDataset:
    # ``seed`` is the augmentation seed of every dataset; the generation seed is ``data_seed``.
    generation = {
        key: kwargs.pop(key) for key in list(kwargs) if key in _OFFLINE_PARAMETERS and key != "seed"
    }
    if "data_seed" in kwargs:
        generation["seed"] = kwargs.pop("data_seed")
    dataset_root_path = build_offline_dataset(root, **generation)
    meta = read_offline_meta(dataset_root_path)
    return VOCSegmentationDataset(
        dataset_root_path,
        split,
        transform,
        class_names=meta["class_names"],
        dataset_name="offline",
        **kwargs,
    )


_BUILDERS: dict[str, Callable[..., SegmentationDataset]] = {
    "voc": VOCSegmentationDataset,
    "voc_aug": VOCAugSegmentationDataset,
    "context": PascalContextDataset,
    "ade20k": ADE20KDataset,
    "cityscapes": CityscapesDataset,
    "camvid": CamVidDataset,
}


def build_dataset(
    name: str,
    split: str,
    root: str | Path | None = None,
    transform: Transform | None = None,
    **kwargs: Any,
) -> SegmentationDataset:
    """Build dataset ``name`` (one of :data:`DATASET_NAMES`) for ``split``.

    Args:
        name: ``offline``, ``voc``, ``voc_aug``, ``context``, ``ade20k``, ``cityscapes``, ``camvid``.
        split: ``train``/``val`` everywhere; also ``trainval`` (voc, offline), ``train_aug``
            (voc_aug), ``test`` (cityscapes, camvid).
        root: the dataset's own root; default ``<data root>/<sub-folder>`` (see module doc). For
            ``offline`` the cache folder.
        transform: joint transform ending in normalisation; default: normalisation only.
        kwargs: passed to the loader (``seed`` of the augmentation, ``with_scribbles``,
            ``scribble_dir``, ...). For ``offline`` also the generation parameters of
            :func:`~repro.data.offline.build_offline_dataset` (``num_classes``, ``image_size``,
            ``num_train``, ``num_val``, ``scale_range``, ``max_objects``,
            ``max_clutter_blobs``, ``grey_background``) and ``data_seed``, its generation seed (``seed`` stays the
            augmentation seed).
    """
    if name == "offline":
        return _build_offline(split, root, transform, **kwargs)
    if name not in _BUILDERS:
        raise ValueError(f"name: unknown dataset {name!r}; expected one of {list(DATASET_NAMES)}")
    resolved = Path(root).expanduser() if root is not None else dataset_root(name)
    return _BUILDERS[name](resolved, split, transform, **kwargs)
