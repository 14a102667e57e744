"""``repro gpu-check``: the CUDA tests and the CUDA benchmark in one command.

No GPU is available where this project is developed, so its CUDA kernels are compiled but
not run there. Where a GPU is, this one command runs the tests marked ``cuda`` (the kernels
against the pure-PyTorch reference in float64/32/16 and bfloat16, ``opcheck`` and
``gradcheck``, non-finite offsets, every training stage on the device) and then
``repro bench ops --device cuda``, and writes into ``--output-dir`` (default
``results/bench``), ready to commit:

* ``cuda_tests.json``: the counts of passed/failed/skipped tests, the GPU, torch, the command;
* ``cuda_tests.txt``: pytest's report;
* ``ops_cuda.json``: the benchmark, rendered by the book page "Speed of the sampling ops".

With ``--commit`` it then commits those files (``git add`` + ``git commit`` of exactly them) in
the repository, so that ``repro gpu-check --commit`` is the one command a machine with a GPU
runs. Without a CUDA device, or with a ``repro._C`` built without CUDA kernels, it says so and
writes and commits nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import subprocess
import sys
from pathlib import Path

from repro.safe_write import write_texts

# torch is imported where it is used: the command line builds this command's options on every
# start, which must stay fast.
REPOSITORY = Path(__file__).resolve().parents[2]
TEST_MARKER = "cuda"


class GpuCheckError(RuntimeError):
    """The check cannot run here (no GPU, no CUDA kernels, no test folder)."""


def require_cuda() -> str:
    """The GPU's name; raises :class:`GpuCheckError` when no CUDA kernel can run here."""
    import torch

    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (a CPU-only build)"
        raise GpuCheckError(
            "no CUDA device: torch.cuda.is_available() is False "
            f"(torch {torch.__version__}, built with CUDA {built}). Run this where a GPU is; "
            "nothing was measured or written."
        )
    from repro.ops.library import compiled_devices

    if "cuda" not in compiled_devices():
        raise GpuCheckError(
            "repro._C has no CUDA kernels (backend: "
            f"{', '.join(compiled_devices()) or 'reference only'}). Rebuild it with a CUDA "
            "toolkit matching torch's CUDA: FORCE_CUDA=1 pip install --no-build-isolation -e . "
            "(or python setup.py build_ext --inplace); nothing was measured or written."
        )
    return torch.cuda.get_device_name(0)


def summarise_pytest(report: str) -> dict[str, int]:
    """Counts from pytest's last summary line, e.g. ``3 passed, 1 skipped in 2.1s``."""
    lines = [line for line in report.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    counts = {
        word: int(number)
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", last)
    }
    if "error" in counts:
        counts["errors"] = counts.pop("error")
    return counts


def run_cuda_tests(tests: list[str], output_dir: Path, gpu: str) -> dict[str, object]:
    """Run pytest on ``tests`` selecting the ``cuda`` marker; write its report and counts."""
    import torch

    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        TEST_MARKER,
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
    ]
    command += tests
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY, check=False)
    report = completed.stdout + completed.stderr
    summary: dict[str, object] = {
        "gpu": gpu,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m pytest", *command[3:]]),
        "returncode": completed.returncode,
        **summarise_pytest(report),
    }
    write_texts(
        {
            output_dir / "cuda_tests.txt": report,
            output_dir / "cuda_tests.json": json.dumps(summary, indent=2) + "\n",
        }
    )
    return summary


RESULT_FILES = ("cuda_tests.json", "cuda_tests.txt", "ops_cuda.json")


def commit_results(output_dir: Path, gpu: str, repository: Path = REPOSITORY) -> str:
    """Commit this check's files under ``output_dir`` (only those) in ``repository``.

    Returns the new commit's hash. Raises :class:`GpuCheckError` when ``output_dir`` is not
    inside ``repository``, none of the files exists, or git fails (its message is kept).
    """
    directory = output_dir.resolve()
    if not directory.is_relative_to(repository.resolve()):
        raise GpuCheckError(f"--commit: {output_dir} is not inside the repository {repository}")
    files = [str(directory / name) for name in RESULT_FILES if (directory / name).is_file()]
    if not files:
        raise GpuCheckError(f"--commit: nothing to commit in {output_dir}")
    message = (
        f"GPU figures from repro gpu-check on {gpu}: CUDA tests and repro bench ops --device cuda"
    )
    for command in (
        ["git", "add", "--", *files],
        ["git", "commit", "-m", message, "--", *files],
        ["git", "rev-parse", "HEAD"],
    ):
        done = subprocess.run(command, cwd=repository, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise GpuCheckError(f"--commit: {' '.join(command[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The check's options (shared by ``repro gpu-check`` and ``python -m repro.ops.gpu_check``)."""
    parser.add_argument("--output-dir", type=Path, default=Path("results") / "bench")
    parser.add_argument(
        "--tests",
        nargs="*",
        default=["tests"],
        help="test files or folders to select the 'cuda' marker from (default: tests)",
    )
    parser.add_argument("--repeats", type=int, default=15, help="benchmark repeats per case")
    parser.add_argument("--no-bench", action="store_true", help="run the CUDA tests only")
    parser.add_argument(
        "--commit",
        action="store_true",
        help="git-commit the files written (the test report and the benchmark) afterwards",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m repro.ops.gpu_check``."""
    parser = argparse.ArgumentParser(prog="repro gpu-check", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the check; 0 when every CUDA test passed and the benchmark ran, else 1."""
    try:
        gpu = require_cuda()
        missing = [t for t in args.tests if not (REPOSITORY / t).exists()]
        if missing:
            raise GpuCheckError(
                f"tests not found under {REPOSITORY}: {missing} (run from a clone of the "
                "repository, where tests/ is)"
            )
    except GpuCheckError as error:
        print(f"repro gpu-check: {error}", file=sys.stderr)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    print(f"GPU: {gpu}; running the CUDA tests ...", flush=True)
    summary = run_cuda_tests(args.tests, args.output_dir, gpu)
    print(
        f"CUDA tests: {summary.get('passed', 0)} passed, {summary.get('failed', 0)} failed, "
        f"{summary.get('skipped', 0)} skipped, {summary.get('errors', 0)} errors "
        f"(report: {args.output_dir / 'cuda_tests.txt'})",
        flush=True,
    )
    bench_rc = 0
    if not args.no_bench:
        from repro.ops.bench import main as bench_main

        bench_rc = bench_main(
            [
                "--device",
                "cuda",
                "--repeats",
                str(args.repeats),
                "--output-dir",
                str(args.output_dir),
            ]
        )
    tests_ok = summary["returncode"] == 0 and not summary.get("failed") and summary.get("passed")
    if getattr(args, "commit", False):
        # Committed even when a test failed: the report says which, and is the GPU evidence.
        try:
            commit = commit_results(args.output_dir, gpu)
        except GpuCheckError as error:
            print(f"repro gpu-check: {error}", file=sys.stderr)
            return 1
        print(f"committed the GPU figures: {commit}")
    return 0 if tests_ok and bench_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
