"""The sampling-ops benchmark's plumbing on a tiny shape (the real run is `repro bench ops`)."""

from __future__ import annotations

import json

import torch

from repro.ops import bench


def test_tiny_benchmark_and_table(tmp_path):
    tiny = [
        bench.BenchCase("conv_tiny", "conv", 1, 2, 6, 6),
        bench.BenchCase("points_tiny", "points", 1, 2, 6, 6, points=3),
    ]
    rows = bench.run_benchmark(tiny, torch.device("cpu"), repeats=1, threads=1, memory=False)
    assert [row["implementation"] for row in rows] == [
        *bench.CONV_IMPLEMENTATIONS,
        *bench.POINT_IMPLEMENTATIONS,
    ]
    assert all(row["forward_backward_ms"] > 0 for row in rows)
    path = tmp_path / "ops_cpu.json"
    path.write_text(json.dumps({"machine": {}, "results": rows}))
    table = bench.bench_table(path)
    conv_rows = table[table["case"] == "conv_tiny"].set_index("implementation")
    assert conv_rows.loc["conv2d", "fb_time_vs_conv2d"] == 1.0
    assert conv_rows.loc["repro", "fb_time_vs_repro"] == 1.0
    assert table[table["case"] == "points_tiny"]["fb_time_vs_conv2d"].isna().all()
    assert "conv_tiny" in bench.format_table(rows)


def test_memory_probe_measures_growth():
    case = next(c for c in bench.CASES if c.kind == "points")
    # In a fresh process, as the benchmark measures it: inside pytest's long-lived process the
    # allocator reuses memory freed by earlier tests and the resident peak need not grow.
    peak = bench.peak_memory_in_fresh_process(case, "reference", torch.device("cpu"), threads=1)
    output_mib = case.batch * case.channels * case.points * case.height * case.width * 4 / 2**20
    assert peak is not None and peak > 0.5 * output_mib


def _rows(times: dict[str, float], memory: dict[str, float]) -> list[dict[str, object]]:
    return [
        {
            "case": bench.TARGET_CASE,
            "implementation": name,
            "forward_ms": 1.0,
            "forward_backward_ms": times[name],
            "peak_memory_mib": memory[name],
        }
        for name in times
    ]


def test_target_checks_compare_ratios_with_the_targets(tmp_path):
    path = tmp_path / "ops_cpu.json"
    times = {"repro": 30.0, "torchvision": 400.0, "reference": 60.0, "conv2d": 10.0}
    memory = {"repro": 10.0, "torchvision": 12.0, "reference": 30.0, "conv2d": 5.0}
    path.write_text(json.dumps({"results": _rows(times, memory)}))
    checks = bench.target_checks(bench.bench_table(path)).set_index("target")
    assert checks["measured"].tolist() == [3.0, 13.33, 2.0, 0.33, 0.83]
    assert checks["met"].tolist() == ["yes", "yes", "no", "yes", "yes"]


def test_target_checks_empty_without_every_implementation(tmp_path):
    path = tmp_path / "ops_cpu.json"
    times = {"repro": 30.0, "conv2d": 10.0}
    path.write_text(json.dumps({"results": _rows(times, dict(times))}))
    assert bench.target_checks(bench.bench_table(path)).empty
