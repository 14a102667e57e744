"""Implementations of the ``repro`` sub-commands (each returns an exit code)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
from pathlib import Path

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _error(message: str, code: int = EXIT_USAGE) -> int:
    print(f"repro: error: {message}", file=sys.stderr)
    return code


def cmd_list(args: argparse.Namespace) -> int:
    from repro.notebooks import discover

    specs = discover()
    if args.names:
        print("\n".join(specs))
        return EXIT_OK
    if args.name:
        if args.name not in specs:
            return _error(f"unknown notebook {args.name!r}; available: {', '.join(specs)}")
        specs = {args.name: specs[args.name]}
    for spec in specs.values():
        print(f"{spec.name}  [{spec.paper.upper()}: {', '.join(spec.regenerates)}]")
        print(f"  {spec.title}")
        print(f"  profiles: {', '.join(spec.profiles)}")
        print("  parameters:")
        for param in spec.parameters.values():
            overrides = {p: v[param.name] for p, v in spec.profiles.items() if param.name in v}
            extra = f"  (profiles: {overrides})" if overrides else ""
            print(f"    {param.name}: {param.type_label} = {param.default!r}{extra}")
            if param.help:
                print(f"        {param.help}")
        print()
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from repro.notebooks import ParameterError, get_notebook
    from repro.notebooks.runner import RunFailed, run_notebook

    overrides: dict[str, str] = {}
    for key, value in args.parameter:
        if key in overrides:
            return _error(f"parameter {key!r} given twice")
        overrides[key] = value
    try:
        spec = get_notebook(args.name)
        spec.resolve(args.profile, overrides)
    except ParameterError as error:
        return _error(str(error))
    out_root = Path(args.out) if args.out else None
    print(f"running {spec.name} at profile {args.profile} ...", file=sys.stderr)
    try:
        folder = run_notebook(
            spec.name, overrides, args.profile, out_root, progress=not args.no_progress, spec=spec
        )
    except RunFailed as error:
        return _error(str(error), EXIT_FAIL)
    metrics = json.loads((folder / "metrics.json").read_text())
    print(f"results: {folder}")
    for key, metric in metrics.get("metrics", {}).items():
        print(f"  {key}: {metric['mean']:.4g} ± {metric['std']:.2g} (n={metric['n']})")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from repro.audit.table import audit_frame

    frame = audit_frame(args.profile, args.paper)
    if frame.empty:
        print("no claims registered")
        return EXIT_OK
    for _, row in frame.iterrows():
        print(
            f"[{row['verdict'].upper()}] {row['paper']} {row['claim']}"
            + (f"  (STALE: {row['stale']})" if row["stale"] else "")
        )
        for label in ("statement", "reported", "reproduced", "our setting", "why", "to run"):
            if row[label]:
                print(
                    textwrap.fill(
                        str(row[label]),
                        100,
                        initial_indent=f"  {label}: ",
                        subsequent_indent=" " * 6,
                    )
                )
        print()
    counts = frame["verdict"].value_counts().to_dict()
    print("verdicts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return EXIT_OK


def cmd_book(args: argparse.Namespace) -> int:
    from repro.site.build import BookBuildError, build_book

    try:
        index = build_book(Path(args.out) if args.out else None)
    except BookBuildError as error:
        return _error(str(error), EXIT_FAIL)
    print(f"book built: {index}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    import torch

    import repro

    print(f"repro {repro.__version__}  (python {platform.python_version()}, {sys.executable})")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPUs {os.cpu_count()}")
    try:
        import torchvision

        print(f"torchvision {torchvision.__version__}")
    except ImportError as error:
        print(f"torchvision: not importable ({error})")
    print(
        f"CUDA available: {torch.cuda.is_available()}"
        + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
    )
    try:
        from repro.ops import backend

        print(f"sampling ops backend: {backend()}")
    except ImportError as error:
        print(f"sampling ops: not importable ({error})")
    try:
        from repro.data import find_datasets

        found = find_datasets()
        print("datasets:")
        for name, path in found.items():
            print(f"  {name}: {path or 'not found'}")
    except ImportError as error:
        print(f"datasets: the data package is not importable ({error})")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from repro.ops.bench import main as bench_main
    except ImportError as error:
        return _error(f"the ops benchmark is not available: {error}", EXIT_FAIL)
    return bench_main(list(args.args))


def cmd_models(args: argparse.Namespace) -> int:
    if args.what == "complexity":
        from repro.models.complexity import main as complexity_main

        return complexity_main(list(args.args))
    from repro import models

    for name in models.available():
        print(f"{name}: {models.describe(name)}")
    return EXIT_OK
