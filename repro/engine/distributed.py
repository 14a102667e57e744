"""Distributed training entry point for ``torchrun`` (DistributedDataParallel with
synchronised batch normalisation, DSNet's "Cross-GPU Batch Normalization").

Usage (2 processes on one machine; gloo on CPU, NCCL on GPUs)::

    torchrun --nproc_per_node 2 -m repro.engine.distributed \\
        --factory my_package.experiments:build --run-dir runs/x [--set epochs=10 ...]

``--factory module:function`` names a function, called in every process with no
arguments, that returns ``(model, train_set, val_set, config)``; ``val_set`` may be None.
``--set key=value`` overrides fields of the returned :class:`TrainConfig` (values parsed
as YAML scalars). Rank 0 prints the run's summary as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml

from repro.engine.config import TrainConfig
from repro.engine.device import resolve_device
from repro.engine.train import train


def load_factory(spec: str) -> Callable[[], tuple[Any, Any, Any, TrainConfig]]:
    """Imports ``module:function``, with a clear error for a malformed or missing name."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--factory must look like 'package.module:function', got {spec!r}")
    module = importlib.import_module(module_name)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ValueError(f"--factory {spec!r}: {module_name} has no callable {attribute!r}")
    return factory


def apply_overrides(config: TrainConfig, assignments: Sequence[str]) -> TrainConfig:
    """``["epochs=3", "eval_scales=[1.0, 1.5]"]`` applied to ``config`` (YAML values)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    changes: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or key not in known:
            raise ValueError(
                f"--set expects key=value with key one of {sorted(known)}, got {assignment!r}"
            )
        value = yaml.safe_load(raw)
        changes[key] = tuple(value) if isinstance(value, list) else value
    return dataclasses.replace(config, **changes)


def init_process_group(backend: str | None, device: str) -> tuple[int, int]:
    """Joins the ``torchrun`` job (``env://``); gloo unless NCCL fits the device."""
    if backend is None:
        # Resolved, so that "auto" on a GPU machine gets NCCL like an explicit "cuda".
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m repro.engine.distributed",
        description="Distributed (DDP + synchronised BN) training; launch with torchrun.",
    )
    parser.add_argument(
        "--factory",
        required=True,
        help="module:function returning (model, train_set, val_set, TrainConfig)",
    )
    parser.add_argument("--run-dir", required=True, type=Path, help="checkpoints and metrics")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a TrainConfig field (repeatable)",
    )
    parser.add_argument("--backend", choices=("gloo", "nccl"), default=None)
    parser.add_argument("--no-resume", action="store_true", help="start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--save-final-weights",
        type=Path,
        default=None,
        metavar="DIR",
        help="every rank writes its final state dict to DIR/rank<r>.pt "
        "(to check that the ranks agree)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, join the process group, train, report, leave the group."""
    args = build_parser().parse_args(argv)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        print(
            "error: RANK/WORLD_SIZE are not set; launch with "
            "'torchrun --nproc_per_node N -m repro.engine.distributed ...'",
            file=sys.stderr,
        )
        return 2
    model, train_set, val_set, config = load_factory(args.factory)()
    config = apply_overrides(config, args.overrides)
    rank, world_size = init_process_group(args.backend, config.device)
    try:
        result = train(
            model,
            train_set,
            val_set,
            config,
            run_dir=args.run_dir,
            resume=not args.no_resume,
            progress=not args.no_progress,
        )
        if args.save_final_weights is not None:
            args.save_final_weights.mkdir(parents=True, exist_ok=True)
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save(state, args.save_final_weights / f"rank{rank}.pt")
        if rank == 0:
            print(json.dumps(result.to_dict(), indent=2, default=str))
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
