"""``repro segment IMAGE --scribbles SCRIBBLES.png``: GDC single-image segmentation as a tool.

See :mod:`repro.singleimage.tool` for the file formats and for why the defaults differ from
the paper's procedure. Exit codes: 0 done; 2 bad input or a refused output path, checked
before the segmentation runs (an output that is an input, an existing file without
``--force``, a directory, a mask name not ending in ``.png``, an overlay extension Pillow
cannot write, a non-finite ``--sigma``, ``--weights`` that do not load), with a one-line message naming the argument; 1 the
outputs could not be written (full disk, ...). In every failure no file is written or changed:
the mask and overlay are written to temporaries and moved into place together.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

EXIT_OK, EXIT_WRITE, EXIT_USAGE = 0, 1, 2
CONVS = ("gdc", "dilated", "normal", "deformable")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``segment`` on the ``repro`` command line."""
    p = subparsers.add_parser(
        "segment",
        help="segment one image from its scribbles (GDC single-image procedure)",
        description="Segment IMAGE from SCRIBBLES (palette/greyscale PNG of class indices, "
        "255 = unlabelled, same size as the image, at least two classes) with a fresh "
        "lightweight GDC network optimised on this image alone. Outputs are checked before "
        "any work: never one of the inputs, never an existing file without --force. They are "
        "written all or nothing: on failure no file is changed.",
    )
    p.add_argument(
        "image", help="the picture (PNG, JPEG, TIFF, ...; 16-bit greyscale is scaled to 8 bits)"
    )
    p.add_argument(
        "--scribbles",
        required=True,
        help="scribble PNG of class indices, 255 = unlabelled (palette indices must be in the "
        "palette)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="mask to write, a palette PNG: the name must end in .png (JPEG would change the "
        "class indices); default: IMAGE stem + _mask.png",
    )
    p.add_argument(
        "--overlay",
        default=None,
        help="also write the image overlaid with the mask, in the format of its extension: "
        ".png, .jpg/.jpeg, .bmp, .tif/.tiff, .webp",
    )
    p.add_argument(
        "--force", action="store_true", help="replace --out/--overlay files that already exist"
    )
    # Defaults None: the values live once, in repro.singleimage.tool.TOOL_CONFIG (importing it
    # here would load torch for every repro command).
    p.add_argument("--conv", choices=CONVS, default=None, help="the sampling layer (gdc)")
    p.add_argument("--sigma", type=float, default=None, help="GDC sigma, finite, >= 0 (0.2)")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (50)")
    p.add_argument("--draws", type=int, default=None, help="averaged GDC passes (50)")
    p.add_argument(
        "--weights",
        default=None,
        help="MobileNetV2 weights of the frozen features: a state-dict file of torchvision's "
        "mobilenet_v2 (e.g. ImageNet weights saved with torch.save(model.state_dict(), PATH)), "
        "a torchvision weights name (downloads), offline-pretrained (this project's stand-in) "
        "or none (random); default: the tool's",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (same seed, same mask on CPU)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: faster than 2 on a busy 2-core machine)",
    )
    p.set_defaults(func=cmd_segment)


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print the one-line error argparse style (no traceback) and return the exit code."""
    print(f"repro segment: error: {message}", file=sys.stderr)
    return code


def cmd_segment(args: argparse.Namespace) -> int:
    """Run the tool; print where the mask went and how long it took."""
    import torch

    from repro.singleimage.tool import (
        TOOL_CONFIG,
        InputError,
        OutputError,
        check_weights,
        run_tool,
    )

    conv = args.conv or TOOL_CONFIG.conv
    sigma = TOOL_CONFIG.sigma if args.sigma is None else args.sigma
    steps = TOOL_CONFIG.steps if args.steps is None else args.steps
    draws = TOOL_CONFIG.num_draws if args.draws is None else args.draws
    if steps < 1 or draws < 1:
        return _fail(f"--steps and --draws must be >= 1, got {steps} and {draws}")
    if not math.isfinite(sigma) or sigma < 0:  # nan passes "< 0" and would poison every offset
        return _fail(f"--sigma must be a finite number >= 0, got {sigma}")
    if args.threads < 1:
        return _fail(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    weights = TOOL_CONFIG.weights if args.weights is None else args.weights
    weights = None if weights == "none" else weights
    try:
        check_weights(weights)
    except InputError as error:
        return _fail(f"--weights: {error}")
    out = (
        Path(args.out)
        if args.out
        else Path(args.image).with_name(Path(args.image).stem + "_mask.png")
    )
    config = replace(
        TOOL_CONFIG, conv=conv, sigma=sigma, steps=steps, num_draws=draws, weights=weights
    )
    try:
        run = run_tool(
            args.image, args.scribbles, config, args.seed, out, args.overlay, force=args.force
        )
    except InputError as error:
        return _fail(str(error))
    except OutputError as error:
        return _fail(str(error), EXIT_WRITE)
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in run.seconds.items() if "/" in k)
    print(f"wrote {out} ({len(run.result.classes)} classes: {run.result.classes})")
    if args.overlay:
        print(f"wrote {args.overlay}")
    print(
        f"time from reading to writing: {run.seconds['total']:.2f} s wall, "
        f"{run.seconds['cpu_total']:.2f} s CPU ({timing})"
    )
    return EXIT_OK
