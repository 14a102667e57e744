"""Images for pretraining backbones offline, and the held-out task that probes what they learnt.

Every paper starts from ImageNet-pretrained backbones (DSNet: ResNet-101; GDC: MobileNetV2 and
ResNet-101; DDSM: ResNets), and nothing can be downloaded here. This module generates the
closest honest stand-in for ImageNet classification, from the same images the offline dataset
is made of (:mod:`repro.data.texture_pool`) but never one of its images and never one of its
classes:

Pretraining task (:class:`PretrainTask`): image-level classification into
``num_pool + len(PRETRAIN_SHAPES)`` classes. A ``texture_share`` of the images is one crop of
one pool photo or texture, labelled by its source image (``texture:<name>``); the others show
one object of a *pretraining shape* (ellipse, pentagon, hexagon, semicircle, L, T, chevron,
hourglass; none of them is one of the offline dataset's eight classes) on a textured
background with clutter, labelled by its shape (``shape:<name>``). The texture classes ask for
colour and texture filters, the shape classes for edges, corners and outlines, which are the
two kinds of early features a network trained on ImageNet ends up with. Backgrounds are in
colour or grey (``grey_background_share``), so figure and ground are sometimes told apart by
colour and sometimes only by texture: these are other generator settings than the offline
dataset's (always grey), as well as another random stream.

Probe task (:class:`ProbeTask`): image-level classification of the offline dataset's eight
shapes (disc, ring, ... crescent), one object per image with the offline dataset's appearance
(grey background and clutter, coloured object). Its classes were never a pretraining label, so
a linear classifier on frozen features measures how well the features transfer, the usual
linear-probe protocol of representation learning.

Item ``i`` depends only on ``(task, split, i)``: each image has its own random stream
``SeedSequence([stream, seed, split, i])`` with a stream constant of its own, so no image
coincides with one of the offline dataset (whose streams are ``[seed, split, i]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from repro.data.offline import _clutter_blob, _desaturated
from repro.data.shapes import SHAPES, _half_width, _regular_polygon, draw_shape
from repro.data.texture_pool import random_texture, texture_crop, texture_pool
from repro.data.transforms import IMAGENET_MEAN, IMAGENET_STD

PRETRAIN_TASK_VERSION = 1
"""Bumped whenever the pretraining or probe images change (it is part of the weights' key)."""

_PRETRAIN_STREAM = 0x70726574  # "pret": a random stream of its own, apart from the offline data
_PROBE_STREAM = 0x70726F62  # "prob"
_SPLIT_CODES = {"train": 1, "val": 2, "test": 3}


def _ellipse(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return u**2 + (v / 0.55) ** 2 <= 1.0


def _pentagon(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return _regular_polygon(u, v, 5)


def _hexagon(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return _regular_polygon(u, v, 6)


def _semicircle(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    # Flat side through the centre, shifted so that the shape sits in the unit circle's middle.
    return (u**2 + (v - 0.4) ** 2 <= 1.0) & (v <= 0.4)


def _l_shape(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    arm = _half_width(radius, 0.22)
    upright = (np.abs(u + 0.45) <= arm) & (np.abs(v) <= 0.75)
    foot = (np.abs(v - 0.75 + arm) <= arm) & (u >= -0.45 - arm) & (u <= 0.6)
    return upright | foot


def _t_shape(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    arm = _half_width(radius, 0.2)
    top = (np.abs(v + 0.7 - arm) <= arm) & (np.abs(u) <= 0.75)
    stem = (np.abs(u) <= arm) & (np.abs(v) <= 0.75)
    return top | stem


def _chevron(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    thickness = 2 * _half_width(radius, 0.22)
    edge = np.abs(u) * 0.9 - 0.35
    return (v >= edge) & (v <= edge + thickness) & (np.abs(u) <= 0.8)


def _hourglass(u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    return (np.abs(u) <= np.abs(v)) & (np.abs(v) <= 0.8)


PRETRAIN_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]] = {
    "ellipse": _ellipse,
    "pentagon": _pentagon,
    "hexagon": _hexagon,
    "semicircle": _semicircle,
    "l_shape": _l_shape,
    "t_shape": _t_shape,
    "chevron": _chevron,
    "hourglass": _hourglass,
}
"""The pretraining task's shapes; disjoint from :data:`repro.data.shapes.SHAPES` by design."""


def _mask(
    function: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
    size: int,
    center: tuple[float, float],
    extent: float,
    angle: float,
) -> np.ndarray:
    rows, cols = np.indices((size, size)).astype(np.float32)
    radius = extent / 2.0
    dy, dx = rows - center[0], cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    return function((dx * cos + dy * sin) / radius, (-dx * sin + dy * cos) / radius, radius)


def _check_common(image_size: int, scale_range: tuple[float, float], blobs: int) -> None:
    if image_size < 16:
        raise ValueError(f"image_size: expected >= 16 pixels, got {image_size}")
    low, high = scale_range
    if not 0 < low <= high <= 1.5:
        raise ValueError(
            f"scale_range: expected 0 < low <= high <= 1.5 (fractions of the image side), "
            f"got {scale_range}"
        )
    if blobs < 0:
        raise ValueError(f"max_clutter_blobs: expected >= 0, got {blobs}")


def _rng(stream: int, seed: int, split: str, index: int) -> np.random.Generator:
    if split not in _SPLIT_CODES:
        raise ValueError(f"split: expected one of {list(_SPLIT_CODES)}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([stream, seed, _SPLIT_CODES[split], index]))


def _place_object(
    rng: np.random.Generator,
    image: np.ndarray,
    function: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
    scale_range: tuple[float, float],
) -> None:
    size = image.shape[0]
    low, high = scale_range
    extent = float(math.exp(rng.uniform(math.log(low * size), math.log(high * size))))
    # The object stays mostly inside the image: one label names it, so it must be visible.
    margin = min(extent / 2.5, size / 2.0)
    center = (float(rng.uniform(margin, size - margin)), float(rng.uniform(margin, size - margin)))
    mask = _mask(function, size, center, extent, float(rng.uniform(0, 2 * np.pi)))
    image[mask] = random_texture(rng, size)[mask]


def _cluttered_background(
    rng: np.random.Generator, size: int, grey: bool, max_blobs: int
) -> np.ndarray:
    tone = _desaturated if grey else (lambda texture: texture)
    image = tone(random_texture(rng, size))
    rows, cols = np.indices((size, size)).astype(np.float32)
    for _ in range(int(rng.integers(0, max_blobs + 1))):
        blob = _clutter_blob(rng, rows, cols, size)
        image[blob] = tone(random_texture(rng, size))[blob]
    return image


@dataclass(frozen=True)
class PretrainTask:
    """The pretraining images (see the module docstring); its fields are part of the weights' key.

    Args:
        image_size: side of the square images in pixels.
        num_train, num_val: images per split (``val`` measures the pretraining task itself).
        texture_share: probability that an image is a texture crop (a ``texture:`` class).
        grey_background_share: probability that a shape image's background is desaturated.
        scale_range: object extent (diameter of its circle) as fractions of ``image_size``,
            drawn log-uniformly.
        max_clutter_blobs: a shape image has 0..this many background blobs.
        seed: generation seed.
    """

    image_size: int = 64
    num_train: int = 20000
    num_val: int = 1000
    texture_share: float = 0.5
    grey_background_share: float = 0.5
    scale_range: tuple[float, float] = (0.35, 0.95)
    max_clutter_blobs: int = 2
    seed: int = 1

    def __post_init__(self) -> None:
        _check_common(self.image_size, self.scale_range, self.max_clutter_blobs)
        if self.num_train < 1 or self.num_val < 1:
            raise ValueError(
                f"num_train/num_val: expected >= 1 each, got {self.num_train}/{self.num_val}"
            )
        for name in ("texture_share", "grey_background_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1], got {value}")
        object.__setattr__(self, "scale_range", tuple(float(s) for s in self.scale_range))

    @property
    def class_names(self) -> list[str]:
        """``texture:<pool image>`` for every pool image, then ``shape:<name>``."""
        return [f"texture:{name}" for name, _, _ in texture_pool()] + [
            f"shape:{name}" for name in PRETRAIN_SHAPES
        ]

    def to_dict(self) -> dict:
        """JSON-ready fields, the generator version and the pool's image names (its classes)."""
        return {
            "version": PRETRAIN_TASK_VERSION,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()},
            "classes": self.class_names,
        }

    def sample(self, split: str, index: int) -> tuple[np.ndarray, int]:
        """Image ``[S, S, 3]`` uint8 and class index of item ``index`` of ``split``."""
        rng = _rng(_PRETRAIN_STREAM, self.seed, split, index)
        size = self.image_size
        pool_size = len(texture_pool())
        if rng.random() < self.texture_share:
            label = int(rng.integers(pool_size))
            image = texture_crop(rng, label, size)
        else:
            shape = int(rng.integers(len(PRETRAIN_SHAPES)))
            grey = bool(rng.random() < self.grey_background_share)
            image = _cluttered_background(rng, size, grey, self.max_clutter_blobs)
            function = list(PRETRAIN_SHAPES.values())[shape]
            _place_object(rng, image, function, self.scale_range)
            label = pool_size + shape
        return np.clip(image, 0, 255).round().astype(np.uint8), label

    def dataset(self, split: str, flip: bool = False) -> GeneratedImages:
        count = {"train": self.num_train, "val": self.num_val}.get(split)
        if count is None:
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        return GeneratedImages(
            lambda index: self.sample(split, index), count, self.class_names, flip
        )


@dataclass(frozen=True)
class ProbeTask:
    """The held-out task: which of the offline dataset's eight shapes one image shows.

    Args:
        image_size: side of the square images in pixels.
        num_train, num_test: images the linear classifier is fitted on and scored on.
        scale_range: object extent as fractions of ``image_size`` (log-uniform).
        max_clutter_blobs: 0..this many grey background blobs per image.
        seed: generation seed (a probe over several seeds draws new images for each).
    """

    image_size: int = 64
    num_train: int = 1000
    num_test: int = 500
    scale_range: tuple[float, float] = (0.35, 0.95)
    max_clutter_blobs: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        _check_common(self.image_size, self.scale_range, self.max_clutter_blobs)
        if self.num_train < 1 or self.num_test < 1:
            raise ValueError(
                f"num_train/num_test: expected >= 1 each, got {self.num_train}/{self.num_test}"
            )
        object.__setattr__(self, "scale_range", tuple(float(s) for s in self.scale_range))

    @property
    def class_names(self) -> list[str]:
        return list(SHAPES)

    def sample(self, split: str, index: int) -> tuple[np.ndarray, int]:
        """Image ``[S, S, 3]`` uint8 and shape index: the offline dataset's look, one object."""
        rng = _rng(_PROBE_STREAM, self.seed, split, index)
        size = self.image_size
        image = _cluttered_background(rng, size, True, self.max_clutter_blobs)
        label = int(rng.integers(len(SHAPES)))
        name = list(SHAPES)[label]
        low, high = self.scale_range
        extent = float(math.exp(rng.uniform(math.log(low * size), math.log(high * size))))
        margin = min(extent / 2.5, size / 2.0)
        center = (
            float(rng.uniform(margin, size - margin)),
            float(rng.uniform(margin, size - margin)),
        )
        rows, cols = np.indices((size, size)).astype(np.float32)
        mask = draw_shape(name, rows, cols, center, extent, float(rng.uniform(0, 2 * np.pi)))
        image[mask] = random_texture(rng, size)[mask]
        return np.clip(image, 0, 255).round().astype(np.uint8), label

    def dataset(self, split: str) -> GeneratedImages:
        count = {"train": self.num_train, "test": self.num_test}.get(split)
        if count is None:
            raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
        return GeneratedImages(lambda index: self.sample(split, index), count, self.class_names)


class GeneratedImages(Dataset):
    """Items ``(image [3, S, S] normalised as the segmentation data is, label [1, 1])``.

    Images are generated when read (a few milliseconds each, far less than a training step,
    and nothing to cache). The label is a 1x1 map so that the engine's segmentation loss,
    which resizes logits to the label, trains an image classifier unchanged (logits
    ``[B, K, 1, 1]``). ``flip`` mirrors an item with probability 1/2 from torch's global
    generator, which the engine seeds at every epoch (reproducible with ``num_workers=0``).
    """

    def __init__(
        self,
        generate: Callable[[int], tuple[np.ndarray, int]],
        length: int,
        class_names: list[str],
        flip: bool = False,
    ) -> None:
        self.generate = generate
        self.length = length
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        self.flip = flip
        self._mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        array, label = self.generate(index)
        image = torch.from_numpy(array).permute(2, 0, 1).float()
        image = (image / 255.0 - self._mean) / self._std
        if self.flip and float(torch.rand(())) < 0.5:
            image = image.flip(-1)
        return image, torch.full((1, 1), label, dtype=torch.long)

    def labels(self) -> list[int]:
        """Every item's class (generates the images)."""
        return [self.generate(index)[1] for index in range(self.length)]
