"""``repro segment``: one image segmented from a scribble file (GDC Sec. V-A as a tool).

File formats:

* IMAGE: any RGB/greyscale/RGBA picture Pillow reads (PNG, JPEG, TIFF, ...); converted to 8-bit
  RGB. 16-bit and 32-bit integer greyscale (Pillow modes ``I;16*``, ``I``) are scaled by their
  bit depth (``value * 255 / white``, white ``2**bits - 1``: ``value / 257`` for 16 bits)
  rather than clipped at 255; 16-bit RGB PNGs are reduced to 8 bits by Pillow itself.
* SCRIBBLES: a palette (or greyscale) PNG of the image's size whose pixel values are class
  indices, ``255`` = unlabelled (the VOC label format, :func:`repro.data.read_label_png`). At
  least two classes must be scribbled; a palette index beyond the file's palette is refused.
* Output mask (``--out``, default ``IMAGE`` stem + ``_mask.png``): a palette PNG of class
  indices (the scribbles' indices). Only ``.png``: JPEG is lossy and would change the indices.
* Overlay (``--overlay``): the image blended with the mask's colours and the scribbles drawn
  on top, an RGB picture in the format of its extension (:data:`OVERLAY_FORMATS`).

Refused before any work (:class:`InputError`, nothing written): an output that is one of the
inputs (or the mask and overlay the same file; symlinks and hard links count), an existing
file unless ``force``, a directory or other non-regular file, an extension outside the rules
above, a folder that cannot be created or written. Outputs are written all or nothing
(:func:`repro.safe_write.write_all_or_nothing`): a failure while writing (full disk, ...)
leaves every existing file as it was and raises :class:`OutputError`.

The tool's defaults (:data:`TOOL_CONFIG`) are the choice of a time-bounded coordinate search
on the tuning set of photo composites (notebook ``gdc_segment_tuning``; judged on the separate
evaluation set in ``gdc_segment_tool``): the frozen MobileNetV2 carries this project's
``offline-pretrained`` weights (pretrained on procedurally generated images from package photos,
not ImageNet; ``--weights PATH`` takes others), Adam at lr 0.01 replaces the paper's SGD (which
scored lower there), and a working size of 96 px with 16 channels keeps it within its time
target (1.5 s per 256-px image on two cores); the wider or larger options that scored a little
higher took two to six times as long. Steps (50), draws (50), sigma (0.2) and the SLIC
expansion are the paper's. The command runs on one CPU thread by default: on the shared
two-core machine two threads were about five times slower (measured: 20 s against 4 s wall for
256x256).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from repro.data.palette import IGNORE_INDEX, label_image, read_label_png, voc_palette
from repro.safe_write import OutputRefused, WriteFailed, check_output_path, write_all_or_nothing
from repro.singleimage.procedure import SegmentationResult, SingleImageConfig, segment_image

logger = logging.getLogger(__name__)

TOOL_CONFIG = SingleImageConfig(
    conv="gdc",
    sigma=0.2,
    steps=50,
    num_draws=50,
    optimizer="adam",
    lr=0.01,
    channels=16,
    working_size=96,
    weights="offline-pretrained",
)
"""Defaults of ``repro segment`` (see the module docstring for why they differ from the paper)."""


MASK_EXTENSIONS = (".png",)
"""The mask's extensions: a lossless format that keeps palette indices exactly."""

OVERLAY_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}
"""The overlay's extensions and the Pillow format each is saved in (case-insensitive)."""

WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow modes of greyscale wider than 8 bits, which ``convert("RGB")`` would clip at 255."""


class InputError(ValueError):
    """A bad input file or argument of the tool; its message names the problem."""


class OutputError(OSError):
    """Writing the outputs failed (full disk, ...); no output file was changed."""


@dataclass
class ToolRun:
    """A finished tool run: the procedure's result and wall-clock seconds per stage."""

    result: SegmentationResult
    image: np.ndarray
    scribbles: np.ndarray
    seconds: dict[str, float]


def check_weights(weights: str | Path | None) -> None:
    """Load ``weights`` into the frozen extractor once, before any work, so that a missing or
    mismatched file is an :class:`InputError` naming it rather than a failure mid-run."""
    from repro.models.lightweight import FrozenMobileNetV2Extractor

    try:
        FrozenMobileNetV2Extractor(weights)
    except (OSError, ValueError, RuntimeError) as error:
        raise InputError(str(error)) from error


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read a picture as ``[H, W, 3]`` uint8 RGB; :class:`InputError` if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"IMAGE: file not found: {path}")
    try:
        with Image.open(path) as image:
            if image.mode in WIDE_GREY_MODES:
                return grey_to_8bit(image, path)
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"IMAGE: cannot read {path} as a picture ({error})") from error


def _full_scale(image: Image.Image, largest: int) -> int:
    """The largest value a wide greyscale picture's samples can take: its white.

    TIFF states its bits per sample (12-bit scientific images come as ``I;16``) and whether
    they are signed (Pillow writes mode ``I`` as signed 32-bit: white is ``2**31 - 1``); a PNG
    is at most 16 bits (older Pillow opened 16-bit PNGs as ``I``); otherwise the data decide
    between 16 bits and Pillow's signed 32-bit ``I``.
    """
    tags = getattr(image, "tag_v2", None)
    bits = tags.get(258) if tags is not None else None  # TIFF BitsPerSample
    if bits:
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        signed = tags.get(339) in (2, (2,))  # TIFF SampleFormat 2: signed integers
        return 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    if image.mode.startswith("I;16") or image.format == "PNG" or largest <= 0xFFFF:
        return 0xFFFF
    return 2**31 - 1


def grey_to_8bit(image: Image.Image, path: str | Path) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB of a 16/32-bit greyscale picture, scaled by its bit depth.

    ``convert("RGB")`` clips such values at 255, which turned most of a 16-bit photo white;
    scaling maps the full range onto 0..255 (``value / 257`` for 16 bits).
    """
    values = np.array(image).astype(np.float64)
    if values.size and values.min() < 0:
        raise InputError(f"IMAGE: {path} has negative pixel values (mode {image.mode})")
    white = _full_scale(image, int(values.max(initial=0)))
    grey = np.round(values * 255.0 / white).clip(0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def read_scribbles(path: str | Path) -> np.ndarray:
    """Read a scribble PNG (palette/greyscale class indices, 255 = unlabelled)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--scribbles: file not found: {path}")
    try:
        return read_label_png(path)
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"--scribbles: cannot read {path} as a label PNG ({error})") from error
    except ValueError as error:  # its message names the file and the problem
        raise InputError(f"--scribbles: {error}") from error


def _suffix(path: str | Path) -> str:
    """The extension that decides the format, lower case (``.PNG`` is a PNG)."""
    return Path(path).suffix.lower()


def _check_mask_name(path: str | Path) -> None:
    """Refuse a mask name whose extension is not PNG (JPEG would change class indices)."""
    suffix = _suffix(path)
    if suffix in (".jpg", ".jpeg"):
        raise InputError(
            f"--out: {path}: the mask is class indices and JPEG is lossy (it would change "
            "them); use a .png name"
        )
    if suffix not in MASK_EXTENSIONS:
        got = f"extension {suffix!r}" if suffix else "no extension"
        raise InputError(f"--out: {path} has {got}; the mask is written as PNG, use .png")


def overlay_format(path: str | Path) -> str:
    """The Pillow format an overlay path's extension asks for; :class:`InputError` if none."""
    suffix = _suffix(path)
    known = ", ".join(OVERLAY_FORMATS)
    if suffix not in OVERLAY_FORMATS:
        got = f"extension {suffix!r}" if suffix else "no extension"
        raise InputError(f"--overlay: {path} has {got}; use one of {known}")
    image_format = OVERLAY_FORMATS[suffix]
    Image.init()  # fills Image.SAVE with every format this Pillow can write
    if image_format not in Image.SAVE:
        raise InputError(f"--overlay: this Pillow cannot write {image_format} ({path})")
    return image_format


def _refuse_directory(name: str, path: str | Path) -> None:
    """Say "directory" for a directory rather than complain about its missing extension."""
    if Path(path).is_dir():
        raise InputError(f"{name}: {path} is a directory; give a file name")


def _check_target(name: str, path: str | Path, inputs: dict[str, str | Path], force: bool) -> None:
    """:func:`repro.safe_write.check_output_path` as an :class:`InputError` naming ``name``."""
    try:
        check_output_path(path, inputs=inputs, force=force)
    except OutputRefused as error:
        raise InputError(f"{name}: {error}") from error


def check_outputs(
    image_path: str | Path,
    scribbles_path: str | Path,
    out_path: str | Path | None,
    overlay_path: str | Path | None,
    force: bool,
) -> None:
    """Refuse output paths that would lose data or fail after the work (see module docstring).

    Cheap and run before any input is read, so a refusal costs no segmentation.
    """
    inputs: dict[str, str | Path] = {"IMAGE": image_path, "--scribbles": scribbles_path}
    if out_path is not None:
        _refuse_directory("--out", out_path)
        _check_mask_name(out_path)
        _check_target("--out", out_path, inputs, force)
        inputs["--out"] = out_path
    if overlay_path is not None:
        _refuse_directory("--overlay", overlay_path)
        overlay_format(overlay_path)
        _check_target("--overlay", overlay_path, inputs, force)


def overlay(
    image: np.ndarray, mask: np.ndarray, scribbles: np.ndarray | None = None, alpha: float = 0.5
) -> np.ndarray:
    """The image blended with the mask's palette colours; scribbles drawn opaque on top."""
    palette = voc_palette()
    blended = (1 - alpha) * image.astype(np.float32) + alpha * palette[mask].astype(np.float32)
    out = blended.round().clip(0, 255).astype(np.uint8)
    if scribbles is not None:
        drawn = scribbles != IGNORE_INDEX
        out[drawn] = palette[scribbles[drawn]]
    return out


def _writers(
    run: ToolRun, out_path: str | Path | None, overlay_path: str | Path | None
) -> dict[str | Path, Callable[[BinaryIO], None]]:
    """What to write where: the mask as a palette PNG, the overlay in its extension's format."""
    writers: dict[str | Path, Callable[[BinaryIO], None]] = {}
    if out_path is not None:
        mask = label_image(run.result.prediction)
        writers[out_path] = lambda file: mask.save(file, format="PNG", optimize=False)
    if overlay_path is not None:
        image_format = overlay_format(overlay_path)
        picture = Image.fromarray(overlay(run.image, run.result.prediction, run.scribbles))
        options = {"quality": 95} if image_format in ("JPEG", "WEBP") else {}
        writers[overlay_path] = lambda file: picture.save(file, format=image_format, **options)
    return writers


def _write_outputs(
    run: ToolRun, out_path: str | Path | None, overlay_path: str | Path | None
) -> None:
    """Write the mask and overlay all or nothing; :class:`OutputError` naming the argument."""
    names = {
        os.path.realpath(path): name
        for name, path in (("--out", out_path), ("--overlay", overlay_path))
        if path is not None
    }
    try:
        write_all_or_nothing(_writers(run, out_path, overlay_path))
    except WriteFailed as error:
        name = names.get(str(error.path), "output")
        raise OutputError(f"{name}: {error}") from error


def run_tool(
    image_path: str | Path,
    scribbles_path: str | Path,
    config: SingleImageConfig = TOOL_CONFIG,
    seed: int = 0,
    out_path: str | Path | None = None,
    overlay_path: str | Path | None = None,
    *,
    force: bool = True,
) -> ToolRun:
    """Read the files, segment, write the mask (and overlay); time it from reading to writing.

    ``force`` (replace existing outputs) defaults to True here, as
    :func:`repro.data.write_label_png` does and the timing notebook (one output name, several
    seeds) relies on; ``repro segment`` passes its ``--force`` flag, off by default.

    Raises:
        InputError: unreadable files, differing sizes, no scribbles, a single scribbled
            class, or a refused output path (:func:`check_outputs`); nothing is written then
            (the output checks run before any input is read, the input checks before any
            output is written).
        OutputError: writing failed; no output file was changed.
    """
    check_outputs(image_path, scribbles_path, out_path, overlay_path, force)
    start = time.perf_counter()
    cpu_start = time.process_time()
    image = read_image_rgb(image_path)
    scribbles = read_scribbles(scribbles_path)
    read_done = time.perf_counter()
    try:
        result = segment_image(image, scribbles, config, seed=seed)
    except ValueError as error:
        if str(error).startswith("scribbles:"):
            raise InputError(f"--{error}") from error
        raise
    segment_done = time.perf_counter()
    run = ToolRun(result=result, image=image, scribbles=scribbles, seconds={})
    _write_outputs(run, out_path, overlay_path)
    end = time.perf_counter()
    run.seconds = {
        "read": read_done - start,
        "segment": segment_done - read_done,
        "write": end - segment_done,
        "total": end - start,
        # CPU seconds of this process: the wall time on an otherwise idle core (one thread),
        # whatever else the machine was running.
        "cpu_total": time.process_time() - cpu_start,
        **{f"segment/{k}": v for k, v in result.timings.items()},
    }
    return run
