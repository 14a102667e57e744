"""Palette PNG label maps: the one reader and writer every dataset and tool uses.

PASCAL VOC stores segmentation labels as 8-bit palette ("P" mode) PNGs whose pixel values are the
class indices; the palette only colours them for viewing. Value ``255`` means unlabelled / ignore
(the VOC object boundaries, the unlabelled pixels of a scribble map).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IGNORE_INDEX = 255
"""Label value of pixels that carry no class (ignored by losses and metrics)."""


def voc_palette() -> np.ndarray:
    """The PASCAL VOC colour map as a ``[256, 3]`` uint8 array.

    Index ``i`` gets the colour built from the bits of ``i`` (the devkit's ``labelcolormap``);
    index 255 is the devkit's cream boundary colour ``(224, 224, 192)``.
    """
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        value, red, green, blue = index, 0, 0, 0
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    palette[IGNORE_INDEX] = (224, 224, 192)
    return palette


def label_image(label: np.ndarray) -> Image.Image:
    """A class-index map as a VOC palette ("P") image, ready to save as PNG anywhere.

    Separate from :func:`write_label_png` so a caller can save it to an open file (e.g. a
    temporary that is renamed into place, :mod:`repro.safe_write`).

    Args:
        label: ``[H, W]`` integer array with values in ``0..255`` (255 = ignore).
    """
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label: expected a 2-D [H, W] array, got shape {label.shape}")
    if label.size and (label.min() < 0 or label.max() > 255):
        raise ValueError(
            f"label: expected values in 0..255, got range {label.min()}..{label.max()}"
        )
    # putpalette turns the greyscale ("L") image into a palette ("P") one, indices unchanged.
    image = Image.fromarray(label.astype(np.uint8))
    image.putpalette(voc_palette().reshape(-1).tolist())
    return image


def write_label_png(path: str | Path, label: np.ndarray) -> None:
    """Write a class-index map as a VOC palette PNG (:func:`label_image`).

    Args:
        path: destination file (parent folders are created).
        label: ``[H, W]`` integer array with values in ``0..255`` (255 = ignore).
    """
    image = label_image(label)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=False)


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a label PNG as an ``[H, W]`` uint8 array of class indices.

    A palette PNG gives its indices (not its colours); a greyscale PNG gives its values. An RGB
    PNG is rejected because its colours would first need a colour-to-class table. A palette PNG
    with a pixel index beyond its palette (other than :data:`IGNORE_INDEX`) is rejected: the
    PNG standard makes that an error, and taking it as a class would invent a class nobody
    drew (a scribble file cut short in an editor, say).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path}")
    with Image.open(path) as image:
        if image.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(
                f"label file {path}: expected a palette (P) or greyscale (L) PNG of class "
                f"indices, got mode {image.mode!r}"
            )
        array = np.array(image)
        if image.mode == "P":
            _check_palette_indices(path, array, image.getpalette())
    if array.max(initial=0) > 255:
        raise ValueError(f"label file {path}: values above 255 found (max {array.max()})")
    return array.astype(np.uint8)


def _check_palette_indices(path: Path, indices: np.ndarray, palette: list[int] | None) -> None:
    """Raise ``ValueError`` for a pixel index with no palette entry (255 = ignore is allowed)."""
    entries = 0 if palette is None else len(palette) // 3
    if palette is None or entries >= IGNORE_INDEX:  # the VOC files: nothing to check, no cost
        return
    beyond = np.unique(indices[(indices >= entries) & (indices != IGNORE_INDEX)])
    if beyond.size:
        values = ", ".join(str(int(value)) for value in beyond[:5])
        plural = "s" if beyond.size > 1 else ""
        raise ValueError(
            f"label file {path}: pixel value{plural} {values} beyond its {entries}-entry "
            f"palette (only 0..{entries - 1} and {IGNORE_INDEX} = unlabelled are allowed)"
        )


def colorize_label(label: np.ndarray) -> np.ndarray:
    """``[H, W]`` class map → ``[H, W, 3]`` uint8 RGB image with the VOC palette (for figures)."""
    return voc_palette()[np.asarray(label, dtype=np.uint8)]
