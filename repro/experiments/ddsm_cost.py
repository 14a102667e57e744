"""The cost of DDSM against the full non-local module and the baseline, over the map size.

DDSM's abstract claims efficiency: sparse affinities at N sampled points instead of all pairs
(Li and Tong, ICIP 2021; the module figure). This module measures, for one module
(``repro.modules.ddsm.DynamicDualSampling``) on a low-level map of ``size x size`` pixels and
a high-level map of half its side (X(ASPP) at output stride 16 against a stride-8 low level):

* **FLOPs** of one forward pass, counted (not estimated) by running the module on fake
  tensors (``FakeTensorMode``: shapes only, no memory, any size) under
  ``torch.utils.flop_counter.FlopCounterMode``. Its convention counts convolutions and
  matrix products as 2 x multiply-accumulates; DDSM computes its N-point affinities with
  elementwise products and sums, which that convention leaves out, so :data:`ELEMENTWISE`
  adds them: 1 FLOP per output element of ``add``/``sub``/``mul``/``div``, 1 per input
  element of ``sum``/``mean``, 4 per element of ``softmax`` (subtract the max, exp, sum,
  divide) and 7 per value read by ``sample_points`` (bilinear: 4 products, 3 sums). A
  product-and-sum of two length-d vectors thus costs 2d either way.
* **Forward + backward time**: median of repeats after warm-ups
  (:func:`repro.ops.bench.time_workload`).
* **Peak memory** of one forward + backward above the inputs, in a fresh process per case
  (:func:`repro.ops.bench.memory_probe`): CPU peak RSS, CUDA
  ``max_memory_allocated``. A case whose dense affinity matrix alone would exceed a limit is
  not started (status ``skipped``); one that runs out of memory is recorded as such.

``python -m repro.experiments.ddsm_cost --memory-probe CASE_JSON`` is the fresh process.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from repro.modules.ddsm import DynamicDualSampling
from repro.ops.bench import memory_probe, peak_forward_backward, time_workload
from repro.ops.library import load_compiled
from repro.results import Recorder

VARIANTS: dict[str, dict[str, str]] = {
    "ddsm": {"affinity": "dynamic", "branches": "both"},
    "non_local": {"affinity": "non_local", "branches": "both"},
    "baseline": {"affinity": "dynamic", "branches": "none"},
}
"""Variant -> ``DynamicDualSampling`` options: DDSM, the full non-local module in its place,
and the refinement path with plain fusion (no module)."""

_aten = torch.ops.aten
ELEMENTWISE: dict[object, Callable[..., int]] = {}
"""FLOP formulas added to ``FlopCounterMode``'s (see the module docstring)."""


def _numel(shape: object) -> int:
    total = 1
    for dim in shape:  # type: ignore[union-attr]
        total *= int(dim)
    return total


def _per_output(factor: int) -> Callable[..., int]:
    def formula(*args: object, out_shape: object = None, **kwargs: object) -> int:
        return factor * _numel(out_shape)

    return formula


def _per_input(*args: object, out_shape: object = None, **kwargs: object) -> int:
    return _numel(args[0])


for _op in (_aten.add, _aten.sub, _aten.mul, _aten.div):
    ELEMENTWISE[_op] = _per_output(1)
for _op in (_aten.sum, _aten.mean):
    ELEMENTWISE[_op] = _per_input
ELEMENTWISE[_aten._softmax] = _per_output(4)
if load_compiled():
    ELEMENTWISE[torch.ops.repro.sample_points] = _per_output(7)


@dataclass(frozen=True)
class CostCase:
    """One measured case: a variant of the module on a ``size x size`` low-level map."""

    variant: str
    size: int
    batch: int = 2
    low_channels: int = 64
    high_channels: int = 128
    inner_channels: int = 64
    out_channels: int = 64
    spatial_samples: int = 9
    channel_samples: int = 9

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)}, got {self.variant!r}")
        if self.size < 2:
            raise ValueError(f"size must be >= 2, got {self.size}")

    @property
    def high_size(self) -> int:
        return max(1, self.size // 2)

    def dense_affinity_gib(self) -> float:
        """Size of the non-local module's ``[B, HW, HW]`` float32 affinity matrix (one copy)."""
        return self.batch * (self.size * self.size) ** 2 * 4 / 2**30

    def build(self) -> DynamicDualSampling:
        return DynamicDualSampling(
            self.low_channels,
            self.high_channels,
            self.out_channels,
            inner_channels=self.inner_channels,
            spatial_samples=self.spatial_samples,
            channel_samples=self.channel_samples,
            **VARIANTS[self.variant],
        )


def workload(case: CostCase, device: torch.device, seed: int = 0) -> Callable[[], torch.Tensor]:
    """The module on device with input leaves requiring grad; a closure running its forward."""
    torch.manual_seed(seed)
    module = case.build().to(device)
    low = torch.randn(case.batch, case.low_channels, case.size, case.size, device=device)
    high = torch.randn(
        case.batch, case.high_channels, case.high_size, case.high_size, device=device
    )
    low.requires_grad_()
    high.requires_grad_()
    return lambda: module(low, high)


def count_flops(case: CostCase) -> int:
    """FLOPs of one forward pass of ``case`` (fake tensors; see the module docstring)."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    module = case.build()  # real (small) parameters; the activations are fake
    with FakeTensorMode(allow_non_fake_inputs=True):
        low = torch.empty(case.batch, case.low_channels, case.size, case.size)
        high = torch.empty(case.batch, case.high_channels, case.high_size, case.high_size)
        counter = FlopCounterMode(display=False, custom_mapping=ELEMENTWISE)
        with counter, torch.no_grad():
            module(low, high)
    return int(counter.get_total_flops())


def measure(
    case: CostCase,
    device: torch.device,
    repeats: int,
    threads: int,
    max_dense_gib: float,
    memory: bool = True,
) -> dict[str, object]:
    """FLOPs, time and peak memory of ``case``; a case over ``max_dense_gib`` (non-local's
    affinity matrix) is counted but neither timed nor run (``status: skipped``)."""
    row: dict[str, object] = {**asdict(case), "flops": count_flops(case)}
    row.update(forward_ms=None, forward_backward_ms=None, peak_memory_mib=None, status="ok")
    if case.variant == "non_local" and case.dense_affinity_gib() > max_dense_gib:
        row["status"] = (
            f"skipped: dense affinity {case.dense_affinity_gib():.1f} GiB > {max_dense_gib:g}"
        )
        return row
    if memory:
        probe = [sys.executable, "-m", "repro.experiments.ddsm_cost", "--memory-probe"]
        probe += [json.dumps(asdict(case)), "--device", device.type, "--threads", str(threads)]
        peak, error = memory_probe(probe)
        if peak is None:
            row["status"] = "out of memory" if "out of memory" in error.lower() else "failed"
            return row
        row["peak_memory_mib"] = peak
    try:
        forward_s, total_s = time_workload(workload(case, device), device, repeats)
    except torch.OutOfMemoryError:
        row["status"] = "out of memory"
        return row
    row.update(forward_ms=forward_s * 1e3, forward_backward_ms=total_s * 1e3)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


QUANTITIES: dict[str, tuple[str, str, float]] = {
    "flops": ("flops", "GFLOPs", 1e-9),
    "peak_memory": ("peak_memory_mib", "MiB", 1.0),
    "forward_backward_time": ("forward_backward_ms", "ms", 1.0),
}
"""Metric name -> (column of :func:`measure`'s rows, unit, scale): what a sweep records."""


def sweep(
    variants: Sequence[str],
    sizes: Sequence[int],
    flop_sizes: Sequence[int],
    device: torch.device,
    repeats: int,
    threads: int,
    max_dense_gib: float,
    **case: int,
) -> pd.DataFrame:
    """:func:`measure` every variant at every size of ``sizes`` (counted, timed, fresh-process
    memory), and FLOPs alone at the sizes of ``flop_sizes`` not in ``sizes``; ``case`` sets
    the other :class:`CostCase` fields (batch, channels, N)."""
    rows = []
    jobs = [(v, s) for s in sorted(set(sizes) | set(flop_sizes)) for v in variants]
    for variant, size in tqdm(jobs, desc="ddsm cost", leave=False):
        cost_case = CostCase(variant, size, **case)
        if size in sizes:
            rows.append(measure(cost_case, device, repeats, threads, max_dense_gib))
        else:
            rows.append(
                {
                    **asdict(cost_case),
                    "flops": count_flops(cost_case),
                    "forward_ms": None,
                    "forward_backward_ms": None,
                    "peak_memory_mib": None,
                    "status": "counted only",
                }
            )
    return pd.DataFrame(rows)


def record_sweep(recorder: Recorder, frame: pd.DataFrame, prefix: str = "efficiency") -> None:
    """``<prefix>/<variant>/<quantity>`` per :data:`QUANTITIES`: one value per measured size,
    the sizes as the metric's points (its ``seeds``; the audit's ``ratio_below`` rule pairs
    them); ``<prefix>/<variant>_over_non_local/<quantity>`` the ratios to the non-local
    module at the sizes both measured."""
    by_variant = {v: f.set_index("size") for v, f in frame.groupby("variant", sort=False)}
    for variant, rows in by_variant.items():
        for name, (column, unit, scale) in QUANTITIES.items():
            measured = rows[column].dropna()
            if measured.empty:
                continue
            recorder.add(
                f"{prefix}/{variant}/{name}",
                (measured * scale).tolist(),
                seeds=[int(s) for s in measured.index],
                unit=unit,
                description=f"{name.replace('_', ' ')} of {variant} per low-level map side",
            )
            if variant == "non_local" or "non_local" not in by_variant:
                continue
            dense = by_variant["non_local"][column].dropna()
            shared = measured.index.intersection(dense.index)
            if len(shared):
                recorder.add(
                    f"{prefix}/{variant}_over_non_local/{name}",
                    (measured[shared] / dense[shared]).tolist(),
                    seeds=[int(s) for s in shared],
                    unit="ratio",
                    description=f"{name.replace('_', ' ')}: {variant} / non-local, same size",
                )


def main(argv: list[str] | None = None) -> int:
    """The fresh process of one memory measurement: prints the peak in MiB."""
    parser = argparse.ArgumentParser(prog="python -m repro.experiments.ddsm_cost")
    parser.add_argument("--memory-probe", required=True, help="a CostCase as JSON")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    case = CostCase(**json.loads(args.memory_probe))
    device = torch.device(args.device)
    print(peak_forward_backward(lambda: workload(case, device), device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
