"""Parameter counts and FLOPs of every registered model (GDC Table V's parameter column).

``python -m repro.models.complexity`` (wired as ``repro models complexity``) builds every
model of :func:`repro.models.available` with its registry defaults (the paper-scale
settings: ResNet-50 DSNet, ResNet-101 DeepLabv3, MobileNetV2 at width 1) on PyTorch's
``meta`` device, so no memory is allocated and nothing runs on real data, counts FLOPs of
one forward pass at the stated input size with ``torch.utils.flop_counter.FlopCounterMode``,
prints the table and writes ``results/model_complexity/cpu.json``.

What the count includes: FLOPs = 2 x multiply-accumulates of convolutions and matrix
products (FlopCounterMode's convention). The dynamic sampling convolution is counted as
the convolution it computes (a formula registered for ``torch.ops.repro`` ops; the
pure-PyTorch reference reaches the same number through its matrix product); the bilinear
reads themselves, BatchNorm, activations, softmax and interpolation are not counted.
Stochastic layers (GDC) count one draw: evaluation with ``eval_draws="mean"`` costs T
times the GDC convolutions.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from repro.models.registry import available, build, default_config, describe
from repro.modules.gdc import GaussianDynamicConv
from repro.ops.library import load_compiled

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("results/model_complexity/cpu.json")
DEFAULT_SIZE = 512
DEFAULT_NUM_CLASSES = 21
CONTEXT_ATTRIBUTES = ("context", "aspp", "cgds", "ddsm", "refinement", "sampling_branch")


def _register_sampling_conv_flops() -> None:
    """Count ``torch.ops.repro.dynamic_sampling_conv2d`` as the convolution it computes."""
    if not load_compiled():
        return  # the pure-PyTorch reference is counted through its matrix product
    op = torch.ops.repro.dynamic_sampling_conv2d
    try:
        from torch.utils.flop_counter import register_flop_formula

        @register_flop_formula(op)
        def _flops(input_shape, offset_shape, weight_shape, *args, out_shape=None, **kwargs):
            out_channels, in_per_group, kh, kw = weight_shape
            batch, _, out_h, out_w = offset_shape
            return 2 * batch * out_channels * in_per_group * kh * kw * out_h * out_w

    except (
        ImportError,
        RuntimeError,
        AttributeError,
        ValueError,
    ) as error:  # already registered / missing
        logger.debug("flop formula for repro sampling conv not registered: %s", error)


def _count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def model_complexity(
    name: str, size: int = DEFAULT_SIZE, num_classes: int = DEFAULT_NUM_CLASSES, **config: Any
) -> dict[str, Any]:
    """Parameters and forward FLOPs of one registered model on a ``1 x 3 x size x size`` input."""
    with torch.device("meta"):
        model = build(name, num_classes, **config)
    model.eval()
    for layer in model.modules():
        if isinstance(layer, GaussianDynamicConv):
            layer.eval_draws = "random"  # one draw; see module docstring
    images = torch.zeros(1, 3, size, size, device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(images)
    context = sum(_count(getattr(model, a, None)) for a in CONTEXT_ATTRIBUTES)
    params = _count(model)
    return {
        "model": name,
        "description": describe(name),
        "input_size": size,
        "params": params,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "backbone_params": _count(model.backbone),
        "context_params": context,
        "gflops": counter.get_total_flops() / 1e9,
        "config": {**default_config(name), **config},
    }


def complexity_rows(names: Sequence[str], size: int, num_classes: int) -> list[dict[str, Any]]:
    """:func:`model_complexity` for each name, with progress logging."""
    _register_sampling_conv_flops()
    rows = []
    for name in names:
        start = time.perf_counter()
        rows.append(model_complexity(name, size, num_classes))
        logger.info("%s: %.1f s", name, time.perf_counter() - start)
    return rows


def complexity_table(path: str | Path = DEFAULT_OUTPUT) -> pd.DataFrame:
    """The committed complexity result as a table (one row per model) for the book."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"complexity result {str(path)!r} not found; run `python -m repro.models.complexity`"
        )
    data = json.loads(path.read_text())
    frame = pd.DataFrame(data["models"]).drop(columns=["config"])
    frame["params_M"] = frame["params"] / 1e6
    frame["context_params_M"] = frame["context_params"] / 1e6
    return frame.set_index("model")


def _format(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'model':30s} {'params (M)':>11s} {'trainable':>11s} {'context (M)':>12s} {'GFLOPs':>9s}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['model']:30s} {row['params'] / 1e6:11.3f} {row['trainable_params'] / 1e6:11.3f} "
            f"{row['context_params'] / 1e6:12.3f} {row['gflops']:9.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the complexity table and write it as JSON."""
    parser = argparse.ArgumentParser(
        prog="repro models complexity",
        description="Parameter counts and FLOPs (torch.utils.flop_counter) of every model.",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="square input side")
    parser.add_argument("--num-classes", type=int, default=DEFAULT_NUM_CLASSES)
    parser.add_argument("--models", nargs="*", default=None, help="subset (default: all)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON to write")
    args = parser.parse_args(argv)
    names = args.models or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; available: {', '.join(available())}")
    if args.size < 32:
        parser.error(f"--size must be >= 32, got {args.size}")
    rows = complexity_rows(names, args.size, args.num_classes)
    print(f"input 1 x 3 x {args.size} x {args.size}, {args.num_classes} classes")
    print(_format(rows))
    payload = {
        "input_size": [args.size, args.size],
        "num_classes": args.num_classes,
        "torch": torch.__version__,
        "counter": "torch.utils.flop_counter.FlopCounterMode, meta device, one GDC draw",
        "models": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
