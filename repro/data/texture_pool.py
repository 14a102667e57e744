"""The real images the offline dataset is textured with: only files that ship inside packages.

scikit-image installs a few images with the package (``skimage/data/*.png|jpg``); others are fetched
from the network on first use, so this module reads the shipped files by path and never calls a
fetcher. scikit-learn ships ``china.jpg`` and ``flower.jpg`` (``load_sample_images``).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

logger = logging.getLogger(__name__)

SKIMAGE_TEXTURES: tuple[str, ...] = ("brick.png", "grass.png", "gravel.png")
"""Grey texture images of scikit-image (tinted with a random colour when used)."""

SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
    "camera.png", "coins.png", "moon.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png",
    "page.png",
)  # fmt: skip
"""Photos shipped with scikit-image (checked on disk; absent ones are skipped with a log line)."""

MAX_SIDE = 512
"""Pool images are downscaled to this longest side, which keeps crops cheap and varied."""


def _as_rgb_uint8(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    return array[:, :, :3].astype(np.uint8)


def _downscale(array: np.ndarray) -> np.ndarray:
    height, width = array.shape[:2]
    factor = MAX_SIDE / max(height, width)
    if factor >= 1:
        return array
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.array(Image.fromarray(array).resize(size, Image.Resampling.BILINEAR))


@functools.cache
def texture_pool() -> tuple[tuple[str, np.ndarray, bool], ...]:
    """All pool images as ``(name, [H, W, 3] uint8, is_grey)``, in a fixed order.

    Raises:
        RuntimeError: when fewer than four images are found (the installation is incomplete).
    """
    data_dir = Path(skimage.data.__file__).parent
    pool: list[tuple[str, np.ndarray, bool]] = []
    for name in SKIMAGE_TEXTURES + SKIMAGE_PHOTOS:
        path = data_dir / name
        if not path.is_file():
            logger.info("texture pool: %s is not shipped with this scikit-image; skipped", name)
            continue
        with Image.open(path) as image:
            array = np.array(image)
        is_grey = array.ndim == 2 or name in SKIMAGE_TEXTURES
        pool.append((f"skimage:{name}", _downscale(_as_rgb_uint8(array)), is_grey))
    bunch = load_sample_images()
    for name, array in zip(bunch.filenames, bunch.images, strict=True):
        pool.append((f"sklearn:{Path(name).name}", _downscale(_as_rgb_uint8(array)), False))
    if len(pool) < 4:
        raise RuntimeError(
            f"texture pool: only {len(pool)} images found in {data_dir} and scikit-learn; "
            "expected the images scikit-image and scikit-learn ship (reinstall them)"
        )
    return tuple(pool)


def random_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``[size, size, 3]`` float32 (0..255) crop of a random pool image.

    The crop side is ``size`` times a zoom in ``[0.5, 2]`` (clipped to the image), resized to
    ``size``; grey textures get a random tint, colour photos a random channel order and gain.
    """
    return texture_crop(rng, int(rng.integers(len(texture_pool()))), size)


def texture_crop(rng: np.random.Generator, index: int, size: int) -> np.ndarray:
    """:func:`random_texture` from pool image ``index`` (the pretraining task names the source).

    Draws from ``rng`` exactly as :func:`random_texture` does after it has picked the image,
    so the offline dataset is unchanged by the split.
    """
    pool = texture_pool()
    if not 0 <= index < len(pool):
        raise ValueError(f"index: expected 0..{len(pool) - 1} (the pool's images), got {index}")
    _, image, is_grey = pool[index]
    height, width = image.shape[:2]
    side = int(min(height, width, max(8, round(size * rng.uniform(0.5, 2.0)))))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = image[top : top + side, left : left + side]
    if side != size:
        crop = np.array(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR))
    crop = crop.astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if is_grey:
        tint = rng.uniform(0.35, 1.0, size=3).astype(np.float32)
        crop = crop.mean(axis=2, keepdims=True) * tint / tint.max()
    else:
        crop = crop[:, :, rng.permutation(3)] * np.float32(rng.uniform(0.7, 1.2))
    return np.clip(crop, 0, 255)
