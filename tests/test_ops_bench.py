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
    case = bench.BenchCase("points_small", "points", 1, 8, 64, 64, points=9)
    peak = bench.measure_peak_memory(case, "reference", torch.device("cpu"))
    assert peak > 0.5  # the [1, 8, 9, 64, 64] float32 output alone is 1.1 MiB
