"""Datasets: the real benchmarks' loaders, the offline dataset, transforms, scribbles.

Item contract: ``(image, label)`` — ``(image, label, scribbles)`` with ``with_scribbles=True`` —
image float32 ``[3, H, W]`` ImageNet-normalised, label/scribbles int64 ``[H, W]``, 255 = ignore.
Every dataset has ``num_classes``, ``class_names`` and ``ignore_index = 255``.
"""

from repro.data.base import DatasetNotFoundError, SegmentationDataset
from repro.data.offline import build_offline_dataset
from repro.data.palette import IGNORE_INDEX, read_label_png, write_label_png
from repro.data.registry import (
    DATASET_NAMES,
    build_dataset,
    dataset_root,
    default_data_root,
    find_datasets,
)
from repro.data.scribbles import expand_scribbles_slic, read_scribblesup_xml, scribbles_from_label
from repro.data.transforms import build_eval_transform, build_train_transform

__all__ = [
    "DATASET_NAMES",
    "IGNORE_INDEX",
    "DatasetNotFoundError",
    "SegmentationDataset",
    "build_dataset",
    "build_eval_transform",
    "build_offline_dataset",
    "build_train_transform",
    "dataset_root",
    "default_data_root",
    "expand_scribbles_slic",
    "find_datasets",
    "read_label_png",
    "read_scribblesup_xml",
    "scribbles_from_label",
    "write_label_png",
]
