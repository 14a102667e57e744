"""The ``repro`` command line (also ``python -m repro``)."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable, Sequence

from repro.cli import commands, segment

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repro",
        description="Dynamic sampling in semantic segmentation, reproduced: run notebooks, audit "
        "the papers' claims, build the book.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "list", help="every notebook, what it regenerates, its parameters and profiles"
    )
    p.add_argument("name", nargs="?", help="show only this notebook")
    p.add_argument("--names", action="store_true", help="print only the names, one per line")
    p.set_defaults(func=commands.cmd_list)

    p = sub.add_parser("run", help="run a notebook through papermill and store its results")
    p.add_argument("name", help="notebook name (see `repro list`)")
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="override a parameter (repeatable); lists as 0.1,0.2 or JSON",
    )
    p.add_argument("--profile", default="smoke", help="smoke | cpu | full (default: smoke)")
    p.add_argument(
        "--out", default=None, help="results root instead of results/ (writes OUT/NAME/PROFILE)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    # argparse reads a value such as "-1,0.3" or "-1e-3" as an option (it only knows "-1" and
    # "-0.5" as numbers); `run` has no option that starts with a digit, so none is lost.
    p._negative_number_matcher = re.compile(r"^-\.?[0-9]")
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser("audit", help="the reported-vs-reproduced table of every claim")
    p.add_argument("--paper", choices=["dsnet", "gdc", "ddsm"], help="only this paper's claims")
    p.add_argument(
        "--profile", default="cpu", help="which results to audit: smoke | cpu | full (default: cpu)"
    )
    p.add_argument(
        "--strict", action="store_true", help="exit 1 when a result is broken (CI); else exit 0"
    )
    p.set_defaults(func=commands.cmd_audit)

    p = sub.add_parser("book", help="build the book (static site) from the committed results")
    p.add_argument(
        "--out", default=None, help="write the site to OUT/_build/html (default: book/_build/html)"
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 after the build when a result is broken (CI); else broken results are only "
        "shown as such",
    )
    p.set_defaults(func=commands.cmd_book)

    p = sub.add_parser(
        "fingerprint",
        help="re-run notebooks at smoke and store their behavioural fingerprints (staleness)",
    )
    p.add_argument("names", nargs="*", help="notebooks (default: all)")
    p.add_argument("--profile", default="cpu", help="whose results to compare (default: cpu)")
    p.add_argument(
        "--drop-other-machines",
        action="store_true",
        help="on a kind of machine with no fingerprints yet, after source changes: compute "
        "anyway, dropping the other machines' values (see the error without it)",
    )
    p.set_defaults(func=commands.cmd_fingerprint)

    p = sub.add_parser("doctor", help="versions, compiled ops, CUDA, datasets found")
    p.set_defaults(func=commands.cmd_doctor)

    p = sub.add_parser(
        "weights",
        help="the offline-pretrained backbones: which are in the cache, and restore the rest",
        description="List the committed offline-pretrained weights and whether each file is in "
        "the cache with its recorded SHA-256; `restore` re-trains the missing ones from their "
        "recorded parameters on CPU (about 9 min for ResNet-18 on one core) and checks the "
        "hash, without rewriting the committed record. The bytes come back on the machine and "
        "software that made the record; elsewhere float sums may differ, and the command says "
        "so (then `repro run pretrain_backbones --profile cpu` makes a new record).",
    )
    p.add_argument("action", nargs="?", choices=["list", "restore"], default="list")
    p.add_argument(
        "architectures",
        nargs="*",
        help="labels to restore (resnet18, mobilenet_v2_x0.5, ...; default: all committed)",
    )
    p.add_argument("--processes", type=int, default=1, help="restore runs side by side")
    p.set_defaults(func=commands.cmd_weights)

    p = sub.add_parser("bench", help="benchmarks")
    p.add_argument("what", choices=["ops"], help="ops: the sampling ops against baselines")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the benchmark")
    p.set_defaults(func=commands.cmd_bench)

    p = sub.add_parser(
        "gpu-check",
        help="where a GPU is: the CUDA tests and the CUDA benchmark, ready to commit",
        description="Run the CUDA tests and `repro bench ops --device cuda`; write their "
        "reports into --output-dir (default results/bench); with --commit, git-commit them.",
    )
    from repro.ops.gpu_check import add_arguments as gpu_check_arguments

    gpu_check_arguments(p)
    p.set_defaults(func=commands.cmd_gpu_check)

    p = sub.add_parser("models", help="model registry: list, or parameter/FLOP counts")
    p.add_argument("what", choices=["list", "complexity"], nargs="?", default="list")
    p.add_argument("args", nargs=argparse.REMAINDER, help="passed to the command")
    p.set_defaults(func=commands.cmd_models)
    segment.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
