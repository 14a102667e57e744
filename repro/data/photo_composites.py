"""Photo composites with exact labels: the tuning and evaluation images of ``repro segment``.

``repro segment`` is meant for photographs, and its defaults are chosen by measurement. No photo
that ships inside a package comes with a segmentation, so these images compose them: a colour
crop of one package photo as the background, and one to three objects cut out of other package
photos with irregular outlines (wobbly blobs) or simple shapes, 40 to 180 px across, pasted on
top. The pixels are real photo content; only the outlines are synthetic, so the label is exact.
Unlike the offline dataset (:mod:`repro.data.offline`) the background keeps its colour (no
figure-ground cue), objects are not told apart by shape (each object is its own class, as in the
paper's single-image task where the classes are whatever the scribbles name), and images are
256 px, the size the tool is timed at.

Two sets with **disjoint photos**, so that defaults tuned on one are judged on images they were
not tuned on: ``tuning`` (:data:`TUNING_PHOTOS`) and ``evaluation`` (:data:`EVALUATION_PHOTOS`).
Item ``i`` of a set depends only on ``(seed, set, i)``. The photos are those of the texture pool
(:mod:`repro.data.texture_pool`); the offline dataset and the pretraining task crop the same
photos, which the segmentation task here does not train on. Scribbles come from the label as in
the offline dataset (:func:`repro.data.scribbles.scribbles_from_label`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from repro.data.scribbles import scribbles_from_label
from repro.data.shapes import draw_shape
from repro.data.texture_pool import texture_crop, texture_pool
from repro.data.transforms import Normalize

TUNING_PHOTOS: tuple[str, ...] = (
    "skimage:rocket.jpg", "skimage:motorcycle_left.png", "skimage:camera.png",
    "skimage:coins.png", "skimage:brick.png", "skimage:grass.png", "sklearn:china.jpg",
)  # fmt: skip
"""Photos of the ``tuning`` set (the tool's defaults are chosen on these)."""

EVALUATION_PHOTOS: tuple[str, ...] = (
    "skimage:astronaut.png", "skimage:coffee.png", "skimage:chelsea.png", "skimage:moon.png",
    "skimage:hubble_deep_field.jpg", "skimage:retina.jpg", "skimage:ihc.png",
    "skimage:page.png", "skimage:gravel.png", "sklearn:flower.jpg",
)  # fmt: skip
"""Photos of the ``evaluation`` set, none of them in :data:`TUNING_PHOTOS`."""

SETS: dict[str, tuple[tuple[str, ...], int]] = {
    "tuning": (TUNING_PHOTOS, 1),
    "evaluation": (EVALUATION_PHOTOS, 2),
}
"""Each set's photos and the code that separates its random streams."""

OUTLINE_SHAPES = ("disc", "square", "triangle", "star", "crescent", "ring")
EXTENT_RANGE = (40.0, 180.0)
"""Objects' diameters in pixels at 256 px (scaled with ``image_size``), drawn log-uniformly."""


def _photo_indices(names: tuple[str, ...]) -> list[int]:
    pool_names = [name for name, _, _ in texture_pool()]
    present = [pool_names.index(name) for name in names if name in pool_names]
    if len(present) < 2:
        raise RuntimeError(
            f"photo composites: fewer than two of {names} are installed (found {present}); "
            "reinstall scikit-image and scikit-learn"
        )
    return present


def _blob(
    rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray, extent: float
) -> np.ndarray:
    size = rows.shape[0]
    centre = rng.uniform(0.15 * size, 0.85 * size, 2)
    radius = extent / 2
    angle = np.arctan2(rows - centre[0], cols - centre[1])
    outline = radius * (
        1
        + rng.uniform(0.1, 0.3) * np.sin(2 * angle + rng.uniform(0, 2 * np.pi))
        + rng.uniform(0.05, 0.15) * np.sin(int(rng.integers(3, 7)) * angle + rng.uniform(0, 7))
    )
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= outline**2


def photo_composite(
    set_name: str, index: int, image_size: int = 256, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image ``[S, S, 3]`` uint8, label ``[S, S]`` uint8 (0 background, 1..k objects) and
    scribbles (255 unlabelled) of item ``index`` of ``set_name``."""
    if set_name not in SETS:
        raise ValueError(f"set_name: expected one of {list(SETS)}, got {set_name!r}")
    if image_size < 32:
        raise ValueError(f"image_size: expected >= 32, got {image_size}")
    names, code = SETS[set_name]
    photos = _photo_indices(names)
    rng = np.random.default_rng(np.random.SeedSequence([seed, code, index]))
    size = image_size
    rows, cols = np.indices((size, size)).astype(np.float32)
    background = int(rng.choice(photos))
    image = texture_crop(rng, background, size)
    label = np.zeros((size, size), dtype=np.uint8)
    scale = size / 256
    low, high = EXTENT_RANGE
    for _ in range(int(rng.integers(1, 4))):
        extent = scale * math.exp(rng.uniform(math.log(low), math.log(high)))
        if rng.random() < 0.5:
            mask = _blob(rng, rows, cols, extent)
        else:
            centre = (float(rng.uniform(0.15, 0.85) * size), float(rng.uniform(0.15, 0.85) * size))
            shape = OUTLINE_SHAPES[int(rng.integers(len(OUTLINE_SHAPES)))]
            mask = draw_shape(shape, rows, cols, centre, extent, float(rng.uniform(0, 2 * np.pi)))
        source = int(rng.choice([p for p in photos if p != background]))
        image[mask] = texture_crop(rng, source, size)[mask]
        label[mask] = label.max() + 1
    # Objects hidden entirely by later ones leave gaps in the numbering; close them.
    present = np.unique(label)
    label = np.searchsorted(present, label).astype(np.uint8)
    scribbles = scribbles_from_label(label, rng)
    return np.clip(image, 0, 255).round().astype(np.uint8), label, scribbles


class PhotoComposites:
    """The first ``count`` items of a set as ``(image [3, S, S] normalised, label [S, S] int64,
    scribbles [S, S] int64)``, the item format of ``build_dataset(..., with_scribbles=True)``.

    ``num_classes`` is the most classes an item can have (background + three objects).
    """

    num_classes = 4

    def __init__(self, set_name: str, count: int, image_size: int = 256, seed: int = 0) -> None:
        if set_name not in SETS:
            raise ValueError(f"set_name: expected one of {list(SETS)}, got {set_name!r}")
        if count < 1:
            raise ValueError(f"count: expected >= 1, got {count}")
        self.set_name, self.count, self.image_size, self.seed = set_name, count, image_size, seed
        self._normalise = Normalize()

    def __len__(self) -> int:
        return self.count

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Item ``index`` as uint8 arrays (:func:`photo_composite`)."""
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} out of range for {self.count} items")
        return photo_composite(self.set_name, index, self.image_size, self.seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, label, scribbles = self.raw(index)
        pixels = torch.from_numpy(image).permute(2, 0, 1).float()
        normalised = (pixels / 255.0 - self._normalise.mean) / self._normalise.std
        return (
            normalised,
            torch.from_numpy(label.astype(np.int64)),
            torch.from_numpy(scribbles.astype(np.int64)),
        )


__all__ = [
    "EVALUATION_PHOTOS",
    "SETS",
    "TUNING_PHOTOS",
    "PhotoComposites",
    "photo_composite",
]
