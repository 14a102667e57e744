"""Speed and memory benchmark of the sampling ops (``repro bench ops``).

For shapes taken from the models it times forward and forward+backward (median of repeats)
of this project's ops, ``torchvision.ops.deform_conv2d``, the ``grid_sample`` reference and
``F.conv2d`` of the same shape (the lower bound of a sampling convolution), and measures the
peak memory of forward+backward in a fresh process per case. Ratios are taken inside one
run. Writes ``results/bench/ops_<device>.json``; ``bench_table`` reads it back for the book
page "Speed of the sampling ops".
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = Path("results") / "bench"


@dataclass(frozen=True)
class BenchCase:
    """One benchmarked shape: a 3x3 sampling convolution or P-point sampling."""

    name: str
    kind: str  # "conv" or "points"
    batch: int
    channels: int
    height: int
    width: int
    kernel: int = 3
    points: int = 0


CASES: tuple[BenchCase, ...] = (
    BenchCase("conv_b4_c64_64x64_k3", "conv", 4, 64, 64, 64),  # the target shape
    BenchCase("conv_b8_c64_64x64_k3", "conv", 8, 64, 64, 64),
    BenchCase("conv_b2_c256_65x65_k3", "conv", 2, 256, 65, 65),
    BenchCase("points_p9_b2_c64_128x128", "points", 2, 64, 128, 128, points=9),
    BenchCase("points_p16_b2_c64_128x128", "points", 2, 64, 128, 128, points=16),
)
CONV_IMPLEMENTATIONS = ("repro", "torchvision", "reference", "conv2d")
POINT_IMPLEMENTATIONS = ("repro", "reference")


def implementations(case: BenchCase) -> tuple[str, ...]:
    return CONV_IMPLEMENTATIONS if case.kind == "conv" else POINT_IMPLEMENTATIONS


def make_workload(
    case: BenchCase, implementation: str, device: torch.device, seed: int = 0
) -> Callable[[], torch.Tensor]:
    """Leaf tensors (requiring grad) and a closure running one forward of ``implementation``."""
    import torchvision

    from repro.ops import dynamic_sampling_conv2d, reference, sample_points

    generator = torch.Generator().manual_seed(seed)

    def leaf(*shape: int, scale: float = 1.0) -> torch.Tensor:
        values = torch.randn(*shape, generator=generator) * scale
        return values.to(device).requires_grad_()

    x = leaf(case.batch, case.channels, case.height, case.width)
    if case.kind == "points":
        offset = leaf(case.batch, 2 * case.points, case.height, case.width, scale=2.0)
        function = sample_points if implementation == "repro" else reference.sample_points
        return lambda: function(x, offset)
    k = case.kernel
    weight = leaf(case.channels, case.channels, k, k, scale=0.05)
    bias = leaf(case.channels)
    if implementation == "conv2d":
        return lambda: F.conv2d(x, weight, bias, padding=k // 2)
    offset = leaf(case.batch, 2 * k * k, case.height, case.width, scale=2.0)
    conv = {
        "repro": dynamic_sampling_conv2d,
        "torchvision": torchvision.ops.deform_conv2d,
        "reference": reference.dynamic_sampling_conv2d,
    }[implementation]
    return lambda: conv(x, offset, weight, bias, padding=k // 2)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


DEFAULT_WARMUPS = 3
"""Untimed runs before the timed ones: with a single warm-up, the first implementation timed in a
process still paid for the allocator's growth, and its median came out visibly slow."""


def time_workload(
    forward: Callable[[], torch.Tensor],
    device: torch.device,
    repeats: int,
    warmups: int = DEFAULT_WARMUPS,
) -> tuple[float, float]:
    """Median seconds of forward and of forward+backward, after ``warmups`` untimed runs."""
    forward_times, total_times = [], []
    for repeat in range(warmups + repeats):
        _synchronize(device)
        start = time.perf_counter()
        with torch.no_grad():
            forward()
        _synchronize(device)
        forward_time = time.perf_counter() - start
        start = time.perf_counter()
        output = forward()
        output.backward(torch.ones_like(output))
        _synchronize(device)
        total_time = time.perf_counter() - start
        if repeat >= warmups:
            forward_times.append(forward_time)
            total_times.append(total_time)
    return statistics.median(forward_times), statistics.median(total_times)


def measure_peak_memory(case: BenchCase, implementation: str, device: torch.device) -> float:
    """Peak memory (MiB) of one forward+backward of ``case`` above the inputs, in this process
    (see :func:`peak_forward_backward`)."""
    return peak_forward_backward(lambda: make_workload(case, implementation, device), device)


def peak_forward_backward(
    make: Callable[[], Callable[[], torch.Tensor]], device: torch.device
) -> float:
    """Peak memory (MiB) of one forward+backward of ``make()``'s closure above its inputs.

    CPU: growth of the peak resident set size (``VmHWM``, reset through
    ``/proc/self/clear_refs`` after the imports and inputs); CUDA: growth of
    ``max_memory_allocated``. Meaningful only in a fresh process (see :func:`memory_probe`).
    """
    forward = make()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    else:
        # The imports' transient peak would hide the op's: reset the high-water mark.
        Path("/proc/self/clear_refs").write_text("5")
        baseline = _resident_bytes("VmRSS")
    output = forward()
    output.backward(torch.ones_like(output))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = _resident_bytes("VmHWM")
    return (peak - baseline) / 2**20


def _resident_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def memory_probe(command: list[str]) -> tuple[float | None, str]:
    """Run a memory probe ``command`` in a fresh process: (its last stdout line as MiB, or
    ``None`` when it failed; its stderr)."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        logger.warning("memory probe %s failed: %s", command[2:], result.stderr[-2000:])
        return None, result.stderr
    return float(result.stdout.strip().splitlines()[-1]), result.stderr


def peak_memory_in_fresh_process(
    case: BenchCase, implementation: str, device: torch.device, threads: int
) -> float | None:
    command = [
        sys.executable,
        "-m",
        "repro.ops.bench",
        "--memory-probe",
        case.name,
        implementation,
        "--device",
        device.type,
        "--threads",
        str(threads),
    ]
    return memory_probe(command)[0]


def machine_description(device: torch.device, threads: int) -> dict[str, object]:
    cpu_model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    description: dict[str, object] = {
        "cpu_model": cpu_model,
        "cpu_cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device.type,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        description["gpu"] = torch.cuda.get_device_name(device)
    from repro.ops import backend

    description["repro_ops_backend"] = backend()
    return description


def run_benchmark(
    cases: list[BenchCase], device: torch.device, repeats: int, threads: int, memory: bool
) -> list[dict[str, object]]:
    rows = []
    jobs = [(case, impl) for case in cases for impl in implementations(case)]
    for case, implementation in tqdm(jobs, desc="bench ops"):
        forward_s, total_s = time_workload(
            make_workload(case, implementation, device), device, repeats
        )
        peak = (
            peak_memory_in_fresh_process(case, implementation, device, threads) if memory else None
        )
        rows.append(
            {
                "case": case.name,
                **{k: v for k, v in asdict(case).items() if k != "name"},
                "implementation": implementation,
                "forward_ms": forward_s * 1e3,
                "forward_backward_ms": total_s * 1e3,
                "peak_memory_mib": peak,
            }
        )
    return rows


def bench_table(path: str | Path):
    """The committed benchmark JSON as a table, with ratios to ``F.conv2d`` and to ``repro``.

    Returns a ``pandas.DataFrame`` with one row per (case, implementation).
    """
    import pandas as pd

    data = json.loads(Path(path).read_text())
    table = pd.DataFrame(data["results"])
    for column, reference_impl in (("conv2d", "conv2d"), ("repro", "repro")):
        base = table[table["implementation"] == reference_impl].set_index("case")
        table[f"fb_time_vs_{column}"] = table["forward_backward_ms"] / table["case"].map(
            base["forward_backward_ms"]
        )
    return table


# The speed and memory targets this project set its CPU op (issue 3), all on the first case.
TARGET_CASE = "conv_b4_c64_64x64_k3"


def target_checks(table):
    """Each target of ``TARGET_CASE`` with the measured ratio and whether it is met.

    ``table`` is :func:`bench_table`'s frame; returns a ``pandas.DataFrame`` (empty when the
    case or one of its implementations was not measured).
    """
    import pandas as pd

    rows = table[table["case"] == TARGET_CASE].set_index("implementation")
    if not {"repro", "torchvision", "reference", "conv2d"} <= set(rows.index):
        return pd.DataFrame()
    time = rows["forward_backward_ms"]
    memory = rows["peak_memory_mib"]
    checks = [
        ("fwd+bwd time ≤ 3 × F.conv2d", time["repro"] / time["conv2d"], "≤ 3", lambda r: r <= 3),
        (
            "≥ 10 × faster than torchvision",
            time["torchvision"] / time["repro"],
            "≥ 10",
            lambda r: r >= 10,
        ),
        (
            "≥ 2.5 × faster than the grid_sample reference",
            time["reference"] / time["repro"],
            "≥ 2.5",
            lambda r: r >= 2.5,
        ),
        (
            "peak memory ≤ ½ the reference's",
            memory["repro"] / memory["reference"],
            "≤ 0.5",
            lambda r: r <= 0.5,
        ),
        (
            "peak memory ≤ torchvision's",
            memory["repro"] / memory["torchvision"],
            "≤ 1",
            lambda r: r <= 1,
        ),
    ]
    return pd.DataFrame(
        [
            {
                "target": name,
                "required": required,
                "measured": round(float(ratio), 2),
                "met": "yes" if met(ratio) else "no",
            }
            for name, ratio, required, met in checks
        ]
    )


def format_table(rows: list[dict[str, object]]) -> str:
    header = (
        f"{'case':28s} {'implementation':12s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'peak MiB':>9s}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        peak = row["peak_memory_mib"]
        peak_text = f"{peak:9.1f}" if isinstance(peak, float) else f"{'-':>9s}"
        lines.append(
            f"{row['case']:28s} {row['implementation']:12s} {row['forward_ms']:9.1f} "
            f"{row['forward_backward_ms']:11.1f} {peak_text}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``repro bench ops``; prints the table and writes the JSON."""
    parser = argparse.ArgumentParser(prog="repro bench ops", description=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--cases", nargs="*", default=None, help="subset of case names")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--note", default="", help="free text stored with the results")
    parser.add_argument("--memory-probe", nargs=2, metavar=("CASE", "IMPL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "repro bench ops: error: --device cuda, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); nothing was measured or written. Run it where a GPU "
            "is (repro gpu-check runs it with the CUDA tests).",
            file=sys.stderr,
        )
        return 1
    by_name = {case.name: case for case in CASES}
    if args.memory_probe:
        case_name, implementation = args.memory_probe
        print(measure_peak_memory(by_name[case_name], implementation, device))
        return 0
    unknown = sorted(set(args.cases or []) - set(by_name))
    if unknown:
        parser.error(f"--cases: unknown {unknown}; known: {sorted(by_name)}")
    cases = [by_name[name] for name in args.cases] if args.cases else list(CASES)
    rows = run_benchmark(cases, device, args.repeats, args.threads, not args.no_memory)
    result = {
        "machine": machine_description(device, args.threads),
        "repeats": args.repeats,
        "timing": f"median of {args.repeats} repeats after {DEFAULT_WARMUPS} warm-ups; "
        "forward under no_grad",
        "memory": "peak growth during one forward+backward in a fresh process "
        + ("(max_memory_allocated)" if device.type == "cuda" else "(peak RSS, VmHWM)"),
        "note": args.note,
        "results": rows,
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"ops_{device.type}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(rows))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
