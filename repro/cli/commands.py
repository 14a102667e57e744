"""Implementations of the ``repro`` sub-commands (each returns an exit code)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from repro.results.store import BrokenResult

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
    from repro.notebooks.runner import RunFailed, RunRefused, check_output_root, run_notebook

    overrides: dict[str, str] = {}
    for key, value in args.parameter:
        if key in overrides:
            return _error(f"parameter {key!r} given twice")
        overrides[key] = value
    if args.out is not None and not args.out.strip():
        return _error("--out: empty path; give a folder, or leave --out out for results/")
    out_root = Path(args.out) if args.out else None
    try:
        spec = get_notebook(args.name)
        spec.resolve(args.profile, overrides)
        if out_root is not None:
            check_output_root(out_root)
    except (ParameterError, RunRefused) as error:
        return _error(str(error))
    print(f"running {spec.name} at profile {args.profile} ...", file=sys.stderr)
    try:
        folder = run_notebook(
            spec.name, overrides, args.profile, out_root, progress=not args.no_progress, spec=spec
        )
    except RunRefused as error:
        return _error(str(error))
    except RunFailed as error:
        # A run stopped by a signal exits as the shell expects of one (130 Ctrl-C, 143 SIGTERM).
        code = 128 + error.signal_number if error.signal_number else EXIT_FAIL
        return _error(str(error), code)
    metrics = json.loads((folder / "metrics.json").read_text())
    print(f"results: {folder}")
    for key, metric in metrics.get("metrics", {}).items():
        print(f"  {key}: {metric['mean']:.4g} ± {metric['std']:.2g} (n={metric['n']})")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from repro.audit.table import audit_broken, audit_frame
    from repro.notebooks.spec import PROFILES

    if args.profile not in PROFILES:
        return _error(f"unknown profile {args.profile!r}; known profiles: {', '.join(PROFILES)}")
    frame = audit_frame(args.profile, args.paper)
    if frame.empty:
        print("no claims registered")
    else:
        _print_audit(frame)
    broken = audit_broken(args.profile, args.paper)
    _print_broken(broken)
    return _strict_exit(broken, args.profile, args.strict)


def _print_audit(frame: pd.DataFrame) -> None:
    """One block per claim (verdict, statement, numbers, why), then the verdict counts."""
    for _, row in frame.iterrows():
        print(
            f"[{row['verdict'].upper()}] {row['paper']} {row['claim']}"
            + (f"  (STALE by {row['checked by']}: {row['stale']})" if row["stale"] else "")
        )
        lines = {label: row[label] for label in ("statement", "reported", "reproduced")}
        if row["test"]:
            lines[f"a − {row['b']}"] = (
                f"{row['difference']:+.2f}, 95% CI [{row['ci low']:.2f}, {row['ci high']:.2f}] "
                f"({row['test']}; {row['setting']} setting)"
            )
        lines["our setting"] = row["our setting"]
        lines["why"] = row["why"]
        lines["power"] = row["power detail"]
        lines["to run"] = row["to run"]
        for label, text in lines.items():
            if text:
                print(
                    textwrap.fill(
                        str(text), 100, initial_indent=f"  {label}: ", subsequent_indent=" " * 6
                    )
                )
        print()
    counts = frame["verdict"].value_counts().to_dict()
    print("verdicts: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def _print_broken(broken: Sequence[BrokenResult]) -> None:
    """Name every broken result file, its reason and the command that writes it anew."""
    if not broken:
        return
    print(f"\nbroken results ({len(broken)}):")
    for result in broken:
        print(f"  {result.describe()}")
        print(f"    re-run: {result.rerun}")


def _strict_exit(broken: Sequence[BrokenResult], profile: str, strict: bool) -> int:
    """Exit 1 when ``--strict`` was given and some result is broken, else 0."""
    if broken and strict:
        return _error(f"{len(broken)} broken result(s) at profile {profile} (--strict)", EXIT_FAIL)
    return EXIT_OK


def cmd_book(args: argparse.Namespace) -> int:
    from repro.paths import book_dir
    from repro.results.store import broken_results
    from repro.site.build import BookBuildError, build_book
    from repro.site.pages import BOOK_PROFILE

    out = Path(args.out) if args.out else None
    problem = output_folder_problem(out or book_dir())
    if problem:
        return _error(f"--out {problem}")
    try:
        index = build_book(out)
    except BookBuildError as error:
        return _error(str(error), EXIT_FAIL)
    print(f"book built: {index}")
    broken = broken_results(BOOK_PROFILE)
    _print_broken(broken)
    return _strict_exit(broken, BOOK_PROFILE, args.strict)


def output_folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot receive the book (``None`` when it can), found before any work.

    The folder must be a folder (or creatable: its nearest existing parent a writable folder)
    and writable; a regular file, or a path below one, is refused.
    """
    folder = folder.absolute()
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == folder else f"is below {existing}, which is"
        return f"{folder} {where} a file; expected a folder (the site goes to OUT/_build/html)"
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == folder else f" (its parent {existing})"
        return f"{folder}{where} is not writable"
    return None


def cmd_weights(args: argparse.Namespace) -> int:
    from repro.models import pretrained

    try:
        entries = pretrained.committed_entries()
    except (pretrained.PretrainedWeightsMissing, pretrained.PretrainedWeightsMismatch) as error:
        print(f"repro weights: {error}", file=sys.stderr)
        return EXIT_FAIL
    if args.action == "list":
        if args.architectures:
            print("repro weights: architectures are named only with `restore`", file=sys.stderr)
            return EXIT_USAGE
        print(
            f"offline-pretrained weights of the committed record (cache: {pretrained.weights_dir()})"
        )
        for entry in entries:
            label = pretrained.architecture_label(entry.spec.arch, entry.spec.width_mult)
            if not entry.path.is_file():
                state = "missing (repro weights restore " + label + ")"
            elif pretrained.sha256_of(entry.path) != entry.sha256:
                state = "DIFFERENT from the record (delete it, then restore)"
            else:
                state = "present, SHA-256 as recorded"
            print(f"  {label:<20} {entry.file}  {state}")
        return EXIT_OK
    if args.processes < 1:
        print(f"repro weights: --processes: expected >= 1, got {args.processes}", file=sys.stderr)
        return EXIT_USAGE
    from repro.experiments.pretraining import restore_committed

    try:
        restored = restore_committed(args.architectures or None, processes=args.processes)
    except ValueError as error:
        print(f"repro weights: {error}", file=sys.stderr)
        return EXIT_USAGE
    failed = False
    for item in restored:
        how = "trained" if item.trained else "already there"
        if item.matches:
            print(f"{item.label}: {how}, SHA-256 as recorded ({item.path})")
        else:
            failed = True
            print(
                f"{item.label}: {how}, but its SHA-256 {item.actual_sha256[:16]}... differs from "
                f"the record's {item.expected_sha256[:16]}... (another torch or code version); "
                f"`{pretrained.PRODUCE_COMMAND}` makes a new record",
                file=sys.stderr,
            )
    return EXIT_FAIL if failed else EXIT_OK


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
        from repro.data.registry import default_data_root

        found = find_datasets()
        print(f"datasets (data root {default_data_root()}: $REPRO_DATA_ROOT, else ~/data):")
        for name, path in found.items():
            print(f"  {name}: {path or _dataset_not_found(name)}")
    except ImportError as error:
        print(f"datasets: the data package is not importable ({error})")
    return EXIT_OK


def _dataset_not_found(name: str) -> str:
    """``not found (looked in <folder>; missing <paths>)`` for a real dataset."""
    from repro.data.registry import DATASET_MARKERS, dataset_root

    root = dataset_root(name)
    missing = [marker for marker in DATASET_MARKERS[name] if not (root / marker).exists()]
    return f"not found (looked in {root}; missing {', '.join(missing)})"


def cmd_bench(args: argparse.Namespace) -> int:
    try:
        from repro.ops.bench import main as bench_main
    except ImportError as error:
        return _error(f"the ops benchmark is not available: {error}", EXIT_FAIL)
    return bench_main(list(args.args))


def cmd_gpu_check(args: argparse.Namespace) -> int:
    from repro.ops.gpu_check import run

    return run(args)


def cmd_models(args: argparse.Namespace) -> int:
    if args.what == "complexity":
        from repro.models.complexity import main as complexity_main

        return complexity_main(list(args.args))
    from repro import models

    for name in models.available():
        print(f"{name}: {models.describe(name)}")
    return EXIT_OK


def cmd_fingerprint(args: argparse.Namespace) -> int:
    from repro.notebooks import discover
    from repro.results.fingerprint import unverifiable_here, update_fingerprints
    from repro.results.store import RunResult, load_result

    specs = discover()
    unknown = [name for name in args.names if name not in specs]
    if unknown:
        return _error(f"unknown notebook {unknown[0]!r}; available: {', '.join(specs)}")
    names = args.names or list(specs)
    dropped = unverifiable_here(names)
    if dropped and not args.drop_other_machines:
        return _error(
            f"this kind of machine has no fingerprint yet for {', '.join(dropped)}, and package "
            "sources changed since the other machines' were computed: recomputing here would "
            "drop theirs and every result they vouch for would read stale. First compute this "
            "machine's values at the code they were computed for (`git worktree add --detach "
            "../fp <commit of results/fingerprints.json>`, copy the compiled repro/_C*.so, run "
            "`PYTHONPATH=../fp repro fingerprint` there and copy its results/fingerprints.json "
            "here), then run this again; or pass --drop-other-machines to accept the loss"
        )
    current = update_fingerprints(names)
    for name, value in current.items():
        result = load_result(name, args.profile)
        if not isinstance(result, RunResult):
            status = "no result" if result is None else "broken result"
        elif result.fingerprint is None:
            status = "result has no fingerprint (judged by its sources)"
        else:
            reasons = result.stale_reasons()
            status = "current" if not reasons else "stale: " + "; ".join(reasons)
            if not reasons and result.fingerprint != value:
                status += (
                    f" (its fingerprint {result.fingerprint} is this code's on another machine)"
                )
        print(f"{name}: {value}  {args.profile}: {status}")
    return EXIT_OK
