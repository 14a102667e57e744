"""``repro segment``: one image segmented from a scribble file (GDC Sec. V-A as a tool).

File formats:

* IMAGE: any RGB/greyscale/RGBA picture Pillow reads (PNG, JPEG, ...); converted to RGB.
* SCRIBBLES: a palette (or greyscale) PNG of the image's size whose pixel values are class
  indices, ``255`` = unlabelled (the VOC label format, :func:`repro.data.read_label_png`). At
  least two classes must be scribbled.
* Output mask: a palette PNG of class indices (the scribbles' indices); overlay: an RGB PNG of
  the image blended with the mask's colours and the scribbles drawn on top.

The tool's defaults (:data:`TOOL_CONFIG`) differ from the paper's procedure where the features
available here require it: the frozen MobileNetV2 has random weights (no download is possible),
and with them SGD at learning rate 0.01 does not move the loss in 50 steps (measured in the
``gdc_single_image`` notebook), so the tool uses Adam (lr 0.01); it works at a shortest side of
``working_size`` pixels and 32 channels to meet its speed target (about 3 s for 256x256 on two
cores). Steps (50), draws (50), sigma (0.2) and the SLIC expansion are the paper's. The command
runs on one CPU thread by default: on the shared two-core machine two threads were about five
times slower (measured: 20 s against 4 s wall for 256x256).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from repro.data.palette import IGNORE_INDEX, read_label_png, voc_palette, write_label_png
from repro.singleimage.procedure import SegmentationResult, SingleImageConfig, segment_image

logger = logging.getLogger(__name__)

TOOL_CONFIG = SingleImageConfig(
    conv="gdc",
    sigma=0.2,
    steps=50,
    num_draws=50,
    optimizer="adam",
    lr=0.01,
    channels=32,
    working_size=96,
)
"""Defaults of ``repro segment`` (see the module docstring for why they differ from the paper)."""


class InputError(ValueError):
    """A bad input file or argument of the tool; its message names the problem."""


@dataclass
class ToolRun:
    """A finished tool run: the procedure's result and wall-clock seconds per stage."""

    result: SegmentationResult
    image: np.ndarray
    scribbles: np.ndarray
    seconds: dict[str, float]


def read_image_rgb(path: str | Path) -> np.ndarray:
    """Read a picture as ``[H, W, 3]`` uint8 RGB; :class:`InputError` if it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"IMAGE: file not found: {path}")
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"IMAGE: cannot read {path} as a picture ({error})") from error


def read_scribbles(path: str | Path) -> np.ndarray:
    """Read a scribble PNG (palette/greyscale class indices, 255 = unlabelled)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--scribbles: file not found: {path}")
    try:
        return read_label_png(path)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise InputError(f"--scribbles: cannot read {path} as a label PNG ({error})") from error


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


def run_tool(
    image_path: str | Path,
    scribbles_path: str | Path,
    config: SingleImageConfig = TOOL_CONFIG,
    seed: int = 0,
    out_path: str | Path | None = None,
    overlay_path: str | Path | None = None,
) -> ToolRun:
    """Read the files, segment, write the mask (and overlay); time it from reading to writing.

    Raises :class:`InputError` for unreadable files, differing sizes, no scribbles or a single
    scribbled class; nothing is written then (every check happens before any output).
    """
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
    if out_path is not None:
        write_label_png(out_path, result.prediction)
    if overlay_path is not None:
        Path(overlay_path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(overlay(image, result.prediction, scribbles)).save(overlay_path)
    end = time.perf_counter()
    seconds = {
        "read": read_done - start,
        "segment": segment_done - read_done,
        "write": end - segment_done,
        "total": end - start,
        # CPU seconds of this process: the wall time on an otherwise idle core (one thread),
        # whatever else the machine was running.
        "cpu_total": time.process_time() - cpu_start,
        **{f"segment/{k}": v for k, v in result.timings.items()},
    }
    return ToolRun(result=result, image=image, scribbles=scribbles, seconds=seconds)
