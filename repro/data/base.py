"""The segmentation-dataset contract shared by every loader, and the missing-data error.

An item is ``(image, label)`` — or ``(image, label, scribbles)`` when the dataset was built with
``with_scribbles=True`` — where ``image`` is a float32 ``[3, H, W]`` tensor normalised with the
ImageNet mean/std, and ``label`` / ``scribbles`` are int64 ``[H, W]`` tensors with ``255`` =
ignore / unlabelled. The raw, untransformed scribble map of item ``i`` is ``dataset.scribbles(i)``.

Random augmentation is seeded per item from ``(seed, epoch, index)``; call :meth:`set_epoch` at
the start of every epoch to draw new augmentations while keeping runs reproducible.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from repro.data.palette import IGNORE_INDEX
from repro.data.transforms import (
    SegmentationSample,
    Transform,
    build_eval_transform,
    sample_generator,
)

logger = logging.getLogger(__name__)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset root is missing or not laid out as the loader expects. Nothing is downloaded."""

    def __init__(
        self, dataset: str, path: Path, layout: str, source: str, detail: str = ""
    ) -> None:
        message = (
            f"dataset {dataset!r}: not found at {path}"
            + (f" ({detail})" if detail else "")
            + f".\nExpected layout:\n{layout.rstrip()}\n"
            f"The data is published at {source}; download it there (repro never downloads "
            f"datasets) and pass root=... or set REPRO_DATA_ROOT."
        )
        super().__init__(message)
        self.dataset, self.path, self.layout, self.source = dataset, path, layout, source


def require_paths(
    dataset: str, root: Path, required: Sequence[Path], layout: str, source: str
) -> None:
    """Raise :class:`DatasetNotFoundError` naming the first required path that is absent."""
    if not root.is_dir():
        raise DatasetNotFoundError(dataset, root, layout, source, "the folder does not exist")
    for path in required:
        if not path.exists():
            raise DatasetNotFoundError(
                dataset, root, layout, source, f"missing {path.relative_to(root)}"
            )


def read_split_list(path: Path) -> list[str]:
    """Image ids of an ImageSets-style list file (one id per line, blank lines skipped)."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as ``[H, W, 3]`` uint8 RGB."""
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


class SegmentationDataset(Dataset):
    """Base class: subclasses fill ``self.images`` and implement :meth:`load_label`.

    Args:
        class_names: names in label-index order (``num_classes = len(class_names)``).
        transform: a joint transform (see :mod:`repro.data.transforms`) that must end with
            normalisation; ``None`` means :func:`~repro.data.transforms.build_eval_transform`.
        seed: base seed of the per-item augmentation generators.
        with_scribbles: also return the scribble map of each item, transformed with it.
    """

    ignore_index: int = IGNORE_INDEX
    name: str = "segmentation"

    def __init__(
        self,
        class_names: Sequence[str],
        transform: Transform | None = None,
        seed: int = 0,
        with_scribbles: bool = False,
    ) -> None:
        if not class_names:
            raise ValueError("class_names: expected at least one class name, got none")
        self.class_names: list[str] = list(class_names)
        self.transform: Transform = transform if transform is not None else build_eval_transform()
        self.seed = int(seed)
        self.epoch = 0
        self.with_scribbles = bool(with_scribbles)
        self.images: list[Path] = []

    @property
    def num_classes(self) -> int:
        """Number of classes (label values ``0 .. num_classes-1``; 255 is ignore)."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (part of every item's generator seed)."""
        self.epoch = int(epoch)

    def load_image(self, index: int) -> np.ndarray:
        """Item ``index``'s image as ``[H, W, 3]`` uint8, untransformed."""
        return load_rgb(self.images[index])

    def load_label(self, index: int) -> np.ndarray:
        """Item ``index``'s label as ``[H, W]`` uint8 training ids, 255 = ignore, untransformed."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_label")

    def has_scribbles(self) -> bool:
        """Whether :meth:`scribbles` can be called on this dataset."""
        return False

    def scribbles(self, index: int) -> np.ndarray:
        """Item ``index``'s scribble map as ``[H, W]`` uint8, 255 = unlabelled, untransformed."""
        raise NotImplementedError(f"dataset {self.name!r} has no scribble annotations")

    def _checked_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index: expected 0..{len(self) - 1}, got {index}")
        return index % len(self)

    def __getitem__(
        self, index: int
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self._checked_index(index)
        image = self.load_image(index)
        label = self.load_label(index)
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"dataset {self.name!r} item {index} ({self.images[index]}): image size "
                f"{image.shape[:2]} differs from label size {label.shape}"
            )
        scribbles = None
        if self.with_scribbles:
            scribbles = torch.from_numpy(self.scribbles(index).astype(np.int64))
        sample = SegmentationSample(
            image=torch.from_numpy(image).permute(2, 0, 1).float(),
            label=torch.from_numpy(label.astype(np.int64)),
            scribbles=scribbles,
        )
        sample = self.transform(sample, sample_generator(self.seed, self.epoch, index))
        if sample.scribbles is not None:
            return sample.image, sample.label, sample.scribbles
        return sample.image, sample.label

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, items={len(self)}, classes={self.num_classes})"
