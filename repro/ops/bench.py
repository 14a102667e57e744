"""Speed and memory benchmark of the sampling ops (``repro bench ops``).

For the benchmark's shapes and the shapes the notebooks' models use, it times forward and
forward+backward of this project's ops, ``torchvision.ops.deform_conv2d``, the
``grid_sample`` reference and ``F.conv2d`` of the same shape (the lower bound of a sampling
convolution), and measures the peak memory of forward+backward in a fresh process per case.

Ratios are measured side by side: every repeat is a round that times each implementation of
a case once, back to back (in an order that rotates between rounds), and each round gives
one ratio to the case's baseline (``F.conv2d`` for convolutions, the ``grid_sample``
reference for point sampling). The JSON keeps every round's times and the median, minimum
and maximum of the per-round ratios: on a shared machine the load drifts during a run, and
ratios of times taken seconds apart are steadier than ratios of medians taken minutes
apart. Writes ``results/bench/ops_<device>.json``; ``bench_table`` reads it back for the
book page "Speed of the sampling ops".
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

from repro.safe_write import write_texts

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
    offset_grad: bool = True  # False: drawn offsets (GDC), no offset gradient asked for


CASES: tuple[BenchCase, ...] = (
    BenchCase("conv_b4_c64_64x64_k3", "conv", 4, 64, 64, 64),  # the target shape
    BenchCase("conv_b8_c64_64x64_k3", "conv", 8, 64, 64, 64),
    BenchCase("conv_b2_c256_65x65_k3", "conv", 2, 256, 65, 65),
    # DSNet's CGDS at 128-px images: the X(3) map, 16 x 16 with 64 channels, batch 8.
    BenchCase("dsnet_cgds_b8_c64_16x16_k3", "conv", 8, 64, 16, 16),
    # GDC's single-image network (repro segment: 96 px, 16 channels): a chunk of 25 draws
    # on the stride-2 branch (48 x 48); drawn offsets need no gradient.
    BenchCase("gdc_b25_c16_48x48_k3_drawn", "conv", 25, 16, 48, 48, offset_grad=False),
    BenchCase("points_p9_b2_c64_128x128", "points", 2, 64, 128, 128, points=9),
    BenchCase("points_p16_b2_c64_128x128", "points", 2, 64, 128, 128, points=16),
)
CONV_IMPLEMENTATIONS = ("repro", "torchvision", "reference", "conv2d")
POINT_IMPLEMENTATIONS = ("repro", "reference")


def implementations(case: BenchCase) -> tuple[str, ...]:
    return CONV_IMPLEMENTATIONS if case.kind == "conv" else POINT_IMPLEMENTATIONS


def baseline(case: BenchCase) -> str:
    """The implementation a case's ratios are taken to (its lower bound or its reference)."""
    return "conv2d" if case.kind == "conv" else "reference"


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
        offset.requires_grad_(case.offset_grad)
        function = sample_points if implementation == "repro" else reference.sample_points
        return lambda: function(x, offset)
    k = case.kernel
    weight = leaf(case.channels, case.channels, k, k, scale=0.05)
    bias = leaf(case.channels)
    if implementation == "conv2d":
        return lambda: F.conv2d(x, weight, bias, padding=k // 2)
    offset = leaf(case.batch, 2 * k * k, case.height, case.width, scale=2.0)
    offset.requires_grad_(case.offset_grad)
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


def time_once(forward: Callable[[], torch.Tensor], device: torch.device) -> tuple[float, float]:
    """Seconds of one forward (under ``no_grad``) and of one forward+backward."""
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
    return forward_time, time.perf_counter() - start


def time_side_by_side(
    workloads: dict[str, Callable[[], torch.Tensor]],
    device: torch.device,
    repeats: int,
    warmups: int = DEFAULT_WARMUPS,
) -> dict[str, tuple[list[float], list[float]]]:
    """Per implementation, the seconds of forward and of forward+backward in each round.

    A round times every implementation once, back to back; the order rotates by one between
    rounds so that none is always first after another's allocations. ``warmups`` untimed
    rounds come first. Round ``r`` of every list was measured within the same few seconds.
    """
    names = list(workloads)
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in names}
    for round_index in range(warmups + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            forward_time, total_time = time_once(workloads[name], device)
            if round_index >= warmups:
                times[name][0].append(forward_time)
                times[name][1].append(total_time)
    return times


def time_workload(
    forward: Callable[[], torch.Tensor],
    device: torch.device,
    repeats: int,
    warmups: int = DEFAULT_WARMUPS,
) -> tuple[float, float]:
    """Median seconds of forward and of forward+backward of one workload, after ``warmups``
    untimed runs (:func:`time_side_by_side` with a single implementation)."""
    forward_times, total_times = time_side_by_side({"one": forward}, device, repeats, warmups)[
        "one"
    ]
    return statistics.median(forward_times), statistics.median(total_times)


def ratio_spread(times: list[float], baseline_times: list[float]) -> dict[str, float]:
    """Median, minimum and maximum over rounds of ``times[r] / baseline_times[r]``."""
    ratios = [mine / theirs for mine, theirs in zip(times, baseline_times, strict=True)]
    return {
        "median": statistics.median(ratios),
        "min": min(ratios),
        "max": max(ratios),
    }


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


MEMORY_ROUNDS = 3
"""Fresh-process memory probes per implementation: a peak resident set varies by several MiB
between processes (measured here: 287-294 MiB for one op, 291-310 for its reference), so the
median of a few, taken in turns, is compared rather than one probe each."""


def peak_memory_rounds(
    case: BenchCase, names: tuple[str, ...], device: torch.device, threads: int
) -> dict[str, list[float | None]]:
    """:data:`MEMORY_ROUNDS` fresh-process probes of each implementation, in turns (so a
    slow drift of the machine's state reaches every implementation alike)."""
    peaks: dict[str, list[float | None]] = {name: [] for name in names}
    for _ in range(MEMORY_ROUNDS):
        for name in names:
            peaks[name].append(peak_memory_in_fresh_process(case, name, device, threads))
    return peaks


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
    """One row per (case, implementation): medians, every round's times, ratios to baseline."""
    rows = []
    for case in tqdm(cases, desc="bench ops"):
        names = implementations(case)
        workloads = {name: make_workload(case, name, device) for name in names}
        times = time_side_by_side(workloads, device, repeats)
        base_forward, base_total = times[baseline(case)]
        peaks = peak_memory_rounds(case, names, device, threads) if memory else {}
        for name in names:
            forward_times, total_times = times[name]
            rounds = [p for p in peaks.get(name, []) if p is not None]
            peak = statistics.median(rounds) if rounds else None
            rows.append(
                {
                    "case": case.name,
                    **{k: v for k, v in asdict(case).items() if k != "name"},
                    "implementation": name,
                    "forward_ms": statistics.median(forward_times) * 1e3,
                    "forward_backward_ms": statistics.median(total_times) * 1e3,
                    "peak_memory_mib": peak,
                    "peak_memory_mib_rounds": peaks.get(name, []),
                    "baseline": baseline(case),
                    "forward_vs_baseline": ratio_spread(forward_times, base_forward),
                    "forward_backward_vs_baseline": ratio_spread(total_times, base_total),
                    "forward_ms_rounds": [t * 1e3 for t in forward_times],
                    "forward_backward_ms_rounds": [t * 1e3 for t in total_times],
                }
            )
    return rows


PROFILE_STEPS: tuple[tuple[str, str], ...] = (
    ("gather (bilinear columns)", "forward with one output channel: the gather alone"),
    ("forward GEMM", "forward minus the gather"),
    ("column-gradient GEMM", "W^T * grad_out: input-gradient backward minus its scatter"),
    ("scatter (col2im)", "input-gradient backward with one output channel"),
    ("offset gradient pass", "offset-gradient backward with one output channel (re-gather)"),
    ("weight GEMM", "weight-gradient backward minus its re-gather"),
    ("re-gather for the weight", "weight-gradient backward with one output channel"),
    ("backward, all passes fused", "the backward the op runs: the passes share each read"),
    ("F.conv2d forward", "the dense convolution of the same shape"),
    ("F.conv2d backward", "aten.convolution_backward (input and weight gradients)"),
)
"""Steps of :func:`profile_conv`, with how each is measured."""


def profile_conv(case: BenchCase, device: torch.device, repeats: int) -> dict[str, float]:
    """Milliseconds per step of the sampling convolution's forward and backward.

    The compiled ops are called directly (no autograd), asking the backward for one gradient
    at a time (``output_mask``); a call with a one-channel weight costs the gathers and
    scatters but next to nothing in its GEMMs, so differences between a call and its
    one-channel twin give the GEMMs. Medians over ``repeats`` rounds timed side by side.
    The separate passes add up to more than the fused backward, which shares each read's
    corners between the re-gather, the offset gradient and the scatter.
    """
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=generator) * scale).to(device)

    k, channels = case.kernel, case.channels
    x = tensor(case.batch, channels, case.height, case.width)
    offset = tensor(case.batch, 2 * k * k, case.height, case.width, scale=2.0)
    weights = {"full": tensor(channels, channels, k, k, scale=0.05)}
    weights["one"] = weights["full"][:1].contiguous()
    grads = {"full": tensor(case.batch, channels, case.height, case.width)}
    grads["one"] = grads["full"][:, :1].contiguous()
    hyper = (1, 1, k // 2, k // 2, 1, 1, 1, 1)
    ops = torch.ops.repro

    def forward(width: str) -> Callable[[], object]:
        return lambda: ops.dynamic_sampling_conv2d(x, offset, weights[width], None, None, *hyper)

    def backward(width: str, mask: list[bool]) -> Callable[[], object]:
        return lambda: ops.dynamic_sampling_conv2d_backward(
            grads[width], x, offset, weights[width], None, *hyper, mask
        )

    calls = {
        "forward": forward("full"),
        "forward_one": forward("one"),
        "input": backward("full", [True, False, False]),
        "input_one": backward("one", [True, False, False]),
        "offset_one": backward("one", [False, True, False]),
        "weight": backward("full", [False, False, True]),
        "weight_one": backward("one", [False, False, True]),
        "all": backward("full", [True, case.offset_grad, True]),
        "conv_forward": lambda: F.conv2d(x, weights["full"], padding=k // 2),
        "conv_backward": lambda: torch.ops.aten.convolution_backward(
            grads["full"],
            x,
            weights["full"],
            None,
            [1, 1],
            [k // 2] * 2,
            [1, 1],
            False,
            [0, 0],
            1,
            [True, True, False],
        ),
    }
    times = {name: [] for name in calls}
    names = list(calls)
    for round_index in range(DEFAULT_WARMUPS + repeats):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            _synchronize(device)
            start = time.perf_counter()
            calls[name]()
            _synchronize(device)
            if round_index >= DEFAULT_WARMUPS:
                times[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    values = (
        ms["forward_one"],
        ms["forward"] - ms["forward_one"],
        ms["input"] - ms["input_one"],
        ms["input_one"],
        ms["offset_one"],
        ms["weight"] - ms["weight_one"],
        ms["weight_one"],
        ms["all"],
        ms["conv_forward"],
        ms["conv_backward"],
    )
    return {step: value for (step, _), value in zip(PROFILE_STEPS, values, strict=True)}


RATIO_COLUMNS = {
    "forward_vs_baseline": "fwd_vs_baseline",
    "forward_backward_vs_baseline": "fb_vs_baseline",
}
"""JSON field of a row's per-round ratio spread -> prefix of its columns in ``bench_table``."""


def bench_table(path: str | Path):
    """The committed benchmark JSON as a table, with ratios to ``F.conv2d`` and to ``repro``.

    Returns a ``pandas.DataFrame`` with one row per (case, implementation). Besides the
    ratios of medians (``fb_time_vs_conv2d``, ``fb_time_vs_repro``), rows of a run that
    measured side by side carry the per-round ratios to their case's baseline:
    ``fb_vs_baseline`` (median), ``fb_vs_baseline_min``, ``fb_vs_baseline_max`` and the same
    for the forward (``fwd_vs_baseline...``). Files of older runs have medians only; their
    per-round columns are then the ratio of medians, with no spread.
    """
    import pandas as pd

    data = json.loads(Path(path).read_text())
    table = pd.DataFrame(data["results"])
    # A run without the memory probes stores null: NaN, so that memory ratios are NaN too.
    table["peak_memory_mib"] = pd.to_numeric(table["peak_memory_mib"], errors="coerce")
    for column, reference_impl in (("conv2d", "conv2d"), ("repro", "repro")):
        base = table[table["implementation"] == reference_impl].set_index("case")
        table[f"fb_time_vs_{column}"] = table["forward_backward_ms"] / table["case"].map(
            base["forward_backward_ms"]
        )
    if "baseline" not in table:
        table["baseline"] = table["kind"].map({"conv": "conv2d", "points": "reference"})
    for field, prefix in RATIO_COLUMNS.items():
        time_column = "forward_ms" if field.startswith("forward_vs") else "forward_backward_ms"
        medians = table.set_index(["case", "implementation"])[time_column]
        of_medians = [
            row[time_column] / medians.get((row["case"], row["baseline"]), float("nan"))
            for _, row in table.iterrows()
        ]
        spreads = table[field] if field in table else pd.Series([None] * len(table))
        for suffix, key in (("", "median"), ("_min", "min"), ("_max", "max")):
            table[prefix + suffix] = [
                spread[key] if isinstance(spread, dict) else fallback
                for spread, fallback in zip(spreads, of_medians, strict=True)
            ]
    return table


# The speed targets of the sampling ops: issue 19 (fwd+bwd <= 2 x F.conv2d on every
# convolution case; point sampling faster than its reference in both directions, with no
# higher peak memory) and issue 3 (the comparisons on TARGET_CASE).
TARGET_CASE = "conv_b4_c64_64x64_k3"
CONV2D_RATIO_TARGET = 2.0


def _spread(row, prefix: str = "fb") -> str:
    """``min–max`` of a row's per-round ratios; empty for a file with medians only."""
    low, high = row[f"{prefix}_vs_baseline_min"], row[f"{prefix}_vs_baseline_max"]
    return "" if low == high else f"{low:.2f}–{high:.2f}"


def target_checks(table):
    """Each target with the measured ratio, its spread over rounds and whether it is met.

    ``table`` is :func:`bench_table`'s frame; returns a ``pandas.DataFrame`` with columns
    case, target, required, measured (median over rounds), spread (min–max over rounds;
    empty where the ratio is not one of times measured side by side) and met ("yes"/"no",
    judged on the median). Cases or implementations not measured give no row.
    """
    import pandas as pd

    checks: list[dict[str, object]] = []

    def check(case, target, required, ratio, spread, met) -> None:
        checks.append(
            {
                "case": case,
                "target": target,
                "required": required,
                "measured": round(float(ratio), 2),
                "spread": spread,
                "met": "yes" if met else "no",
            }
        )

    for case, rows in table.groupby("case", sort=False):
        by_impl = rows.set_index("implementation")
        if "repro" not in by_impl.index:
            continue
        mine = by_impl.loc["repro"]
        if mine["kind"] == "conv" and "conv2d" in by_impl.index:
            ratio = mine["fb_vs_baseline"]
            check(
                case,
                f"fwd+bwd ≤ {CONV2D_RATIO_TARGET:g} × F.conv2d",
                f"≤ {CONV2D_RATIO_TARGET:g}",
                ratio,
                _spread(mine),
                ratio <= CONV2D_RATIO_TARGET,
            )
        if mine["kind"] == "points" and "reference" in by_impl.index:
            forward = mine["fwd_vs_baseline"]
            spread = _spread(mine, "fwd")
            check(case, "forward faster than the reference", "< 1", forward, spread, forward < 1)
            total = mine["fb_vs_baseline"]
            check(case, "fwd+bwd faster than the reference", "< 1", total, _spread(mine), total < 1)
            memory = mine["peak_memory_mib"] / by_impl.loc["reference", "peak_memory_mib"]
            if pd.notna(memory):
                check(case, "peak memory ≤ the reference's", "≤ 1", memory, "", memory <= 1)
        if case == TARGET_CASE and {"torchvision", "reference"} <= set(by_impl.index):
            time = by_impl["forward_backward_ms"]
            memory = by_impl["peak_memory_mib"]
            speedup = time["torchvision"] / time["repro"]
            check(case, "≥ 10 × faster than torchvision", "≥ 10", speedup, "", speedup >= 10)
            speedup = time["reference"] / time["repro"]
            check(
                case,
                "≥ 2.5 × faster than the grid_sample reference",
                "≥ 2.5",
                speedup,
                "",
                speedup >= 2.5,
            )
            for other, bound, required in (("reference", 0.5, "≤ 0.5"), ("torchvision", 1, "≤ 1")):
                ratio = memory["repro"] / memory[other]
                if pd.notna(ratio):
                    name = "½ the reference's" if other == "reference" else "torchvision's"
                    check(case, f"peak memory ≤ {name}", required, ratio, "", ratio <= bound)
    return pd.DataFrame(checks, columns=["case", "target", "required", "measured", "spread", "met"])


def profile_table(profile: dict[str, dict[str, float]]):
    """The per-step profile as a ``pandas.DataFrame``: one row per step, one column per case
    (milliseconds), in the order of :data:`PROFILE_STEPS`."""
    import pandas as pd

    table = pd.DataFrame(profile)
    return table.reindex([step for step, _ in PROFILE_STEPS if step in table.index])


def format_table(rows: list[dict[str, object]]) -> str:
    """The rows as text: medians, peak memory and fwd+bwd / baseline per round."""
    header = (
        f"{'case':28s} {'implementation':12s} {'fwd ms':>9s} {'fwd+bwd ms':>11s} {'peak MiB':>9s}"
        f"  fwd+bwd / baseline: median [min–max]"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        peak = row["peak_memory_mib"]
        peak_text = f"{peak:9.1f}" if isinstance(peak, float) else f"{'-':>9s}"
        spread = row.get("forward_backward_vs_baseline")
        ratio_text = (
            f"  {spread['median']:.2f} [{spread['min']:.2f}–{spread['max']:.2f}] "
            f"× {row['baseline']}"
            if isinstance(spread, dict)
            else ""
        )
        lines.append(
            f"{row['case']:28s} {row['implementation']:12s} {row['forward_ms']:9.1f} "
            f"{row['forward_backward_ms']:11.1f} {peak_text}{ratio_text}"
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
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the per-step profile of the convolution"
    )
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
    load_before = os.getloadavg()
    rows = run_benchmark(cases, device, args.repeats, args.threads, not args.no_memory)
    profile = (
        {}
        if args.no_profile
        else {
            case.name: profile_conv(case, device, args.repeats)
            for case in cases
            if case.kind == "conv"
        }
    )
    result = {
        "machine": machine_description(device, args.threads),
        "repeats": args.repeats,
        "timing": f"{args.repeats} rounds after {DEFAULT_WARMUPS} warm-up rounds; a round times "
        "every implementation of a case once, back to back (rotating order); times are medians "
        "over rounds, ratios to the baseline are per round (median, min, max); forward under "
        "no_grad",
        "memory": "peak growth during one forward+backward in a fresh process "
        + ("(max_memory_allocated)" if device.type == "cuda" else "(peak RSS, VmHWM)")
        + f"; median of {MEMORY_ROUNDS} processes per implementation, taken in turns",
        "note": args.note,
        # Other jobs on the machine shift every time: the load average says whether there were.
        "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
        "results": rows,
        "profile": profile,
        "profile_steps": dict(PROFILE_STEPS),
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / f"ops_{device.type}.json"
    # Never a half-written results file (an interrupted write would break `repro book`).
    write_texts({path: json.dumps(result, indent=2) + "\n"})
    print(format_table(rows))
    if profile:
        print(profile_table(profile).round(2).to_string())
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
