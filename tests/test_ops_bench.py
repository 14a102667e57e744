"""The sampling-ops benchmark's plumbing on a tiny shape (the real run is `repro bench ops`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
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


def _rows(
    times: dict[str, float], memory: dict[str, float], case: str = bench.TARGET_CASE, kind="conv"
) -> list[dict[str, object]]:
    """Rows of a run that kept medians only (the format before side-by-side rounds)."""
    return [
        {
            "case": case,
            "kind": kind,
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
    assert checks["met"].tolist() == ["no", "yes", "no", "yes", "yes"]
    # Medians only: the ratio of medians, and no spread to show beyond it.
    assert checks.loc["fwd+bwd ≤ 2 × F.conv2d", "spread"] == ""


def test_target_checks_empty_without_every_implementation(tmp_path):
    path = tmp_path / "ops_cpu.json"
    times = {"repro": 30.0}
    path.write_text(json.dumps({"results": _rows(times, dict(times))}))
    assert bench.target_checks(bench.bench_table(path)).empty


def test_side_by_side_rounds_rotate_and_align():
    calls: list[str] = []

    def workload(name: str):
        def forward() -> torch.Tensor:
            calls.append(name)
            return torch.zeros(1, requires_grad=True) * 1.0

        return forward

    times = bench.time_side_by_side(
        {name: workload(name) for name in "abc"}, torch.device("cpu"), repeats=3, warmups=1
    )
    assert all(len(forward) == len(total) == 3 for forward, total in times.values())
    # Each round calls every workload twice (forward, then forward+backward), order rotated.
    rounds = [calls[i : i + 6 : 2] for i in range(0, len(calls), 6)]
    assert rounds == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_ratio_spread_is_per_round():
    # Round 2 ran under load for both implementations: per-round ratios stay 2, a ratio of
    # medians taken from different rounds would not.
    spread = bench.ratio_spread([2.0, 20.0, 4.0], [1.0, 10.0, 2.0])
    assert spread == {"median": 2.0, "min": 2.0, "max": 2.0}
    assert bench.ratio_spread([3.0, 1.0], [1.0, 1.0]) == {"median": 2.0, "min": 1.0, "max": 3.0}


def test_run_records_rounds_and_spreads_that_the_table_and_checks_show(tmp_path):
    cases = [
        bench.BenchCase("conv_tiny", "conv", 1, 2, 6, 6, offset_grad=False),
        bench.BenchCase("points_tiny", "points", 1, 2, 6, 6, points=3),
    ]
    rows = bench.run_benchmark(cases, torch.device("cpu"), repeats=3, threads=1, memory=False)
    for row in rows:
        assert len(row["forward_backward_ms_rounds"]) == 3
        spread = row["forward_backward_vs_baseline"]
        assert spread["min"] <= spread["median"] <= spread["max"]
        if row["implementation"] == row["baseline"]:
            assert spread == {"median": 1.0, "min": 1.0, "max": 1.0}
    path = tmp_path / "ops_cpu.json"
    path.write_text(json.dumps({"results": rows}))
    table = bench.bench_table(path).set_index(["case", "implementation"])
    mine = next(r for r in rows if r["case"] == "conv_tiny" and r["implementation"] == "repro")
    assert (
        table.loc[("conv_tiny", "repro"), "fb_vs_baseline_max"]
        == (mine["forward_backward_vs_baseline"]["max"])
    )
    checks = bench.target_checks(bench.bench_table(path))
    assert set(checks["case"]) == {"conv_tiny", "points_tiny"}
    assert len(checks[checks["case"] == "points_tiny"]) == 2  # no memory measured: no memory row
    assert "[" in bench.format_table(rows)


def test_model_shapes_are_benchmarked():
    names = {case.name for case in bench.CASES}
    assert {"dsnet_cgds_b8_c64_16x16_k3", "gdc_b25_c16_48x48_k3_drawn"} <= names
    gdc = next(case for case in bench.CASES if case.name.startswith("gdc"))
    forward = bench.make_workload(
        bench.BenchCase("gdc_tiny", "conv", 1, 2, 5, 5, offset_grad=False),
        "repro",
        torch.device("cpu"),
    )
    assert not gdc.offset_grad and forward().grad_fn is not None


def test_book_page_shows_the_spread_of_each_ratio(tmp_path):
    from repro.site.pages import _bench_view

    rows = bench.run_benchmark(
        [bench.BenchCase("conv_tiny", "conv", 1, 2, 6, 6)],
        torch.device("cpu"),
        repeats=3,
        threads=1,
        memory=False,
    )
    path = tmp_path / "ops_cpu.json"
    path.write_text(json.dumps({"results": rows}))
    view = _bench_view(bench.bench_table(path)).set_index("op")
    spread = next(r for r in rows if r["implementation"] == "repro")["forward_backward_vs_baseline"]
    assert view.loc["repro", "fwd+bwd ÷ baseline, median [min–max]"] == (
        f"{spread['median']:.2f} [{spread['min']:.2f}–{spread['max']:.2f}]"
    )
    assert view.loc["conv2d", "fwd+bwd ÷ baseline, median [min–max]"] == "1.00"


def test_profile_steps_and_the_page_section():
    from repro.site.pages import _profile_section

    case = bench.BenchCase("conv_tiny", "conv", 1, 4, 8, 8)
    profile = bench.profile_conv(case, torch.device("cpu"), repeats=2)
    assert list(profile) == [step for step, _ in bench.PROFILE_STEPS]
    assert all(profile[step] > 0 for step in ("gather (bilinear columns)", "F.conv2d forward"))
    meta = {"profile": {case.name: profile}, "profile_steps": dict(bench.PROFILE_STEPS)}
    text = "\n".join(_profile_section(meta))
    assert "Where the time goes" in text and "scatter (col2im)" in text and "conv_tiny" in text
    assert _profile_section({}) == []


def test_command_writes_ratios_spreads_profile_and_load(tmp_path, monkeypatch, capsys):
    tiny = (
        bench.BenchCase("conv_tiny", "conv", 1, 2, 6, 6),
        bench.BenchCase("points_tiny", "points", 1, 2, 6, 6, points=3),
    )
    monkeypatch.setattr(bench, "CASES", tiny)
    argv = ["--device", "cpu", "--repeats", "2", "--threads", "1", "--no-memory"]
    assert bench.main([*argv, "--output-dir", str(tmp_path), "--note", "loaded"]) == 0
    data = json.loads((tmp_path / "ops_cpu.json").read_text())
    assert data["note"] == "loaded" and len(data["load_average"]["before"]) == 3
    assert set(data["profile"]) == {"conv_tiny"}  # the convolution only
    for row in data["results"]:
        assert len(row["forward_ms_rounds"]) == len(row["forward_backward_ms_rounds"]) == 2
        assert set(row["forward_backward_vs_baseline"]) == {"median", "min", "max"}
    assert "× conv2d" in capsys.readouterr().out


def test_page_says_when_a_file_has_medians_only(tmp_path, monkeypatch):
    from repro.site import pages

    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    times = {"repro": 30.0, "conv2d": 10.0}
    (bench_dir / "ops_cpu.json").write_text(json.dumps({"results": _rows(times, dict(times))}))
    monkeypatch.setattr(pages, "results_dir", lambda: tmp_path)
    out = tmp_path / "generated"
    out.mkdir()
    assert "generated/ops_speed" in pages.extra_pages(out)
    assert "predates the side-by-side rounds" in (out / "ops_speed.md").read_text()


def test_a_broken_file_is_reported_on_the_page_not_raised(tmp_path, monkeypatch):
    from repro.site import pages

    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    times = {"repro": 30.0, "conv2d": 10.0}
    (bench_dir / "ops_cpu.json").write_text(json.dumps({"results": _rows(times, dict(times))}))
    (bench_dir / "ops_cuda.json").write_text('{"results": [')  # cut off mid-write
    monkeypatch.setattr(pages, "results_dir", lambda: tmp_path)
    out = tmp_path / "generated"
    out.mkdir()
    assert "generated/ops_speed" in pages.extra_pages(out)
    page = (out / "ops_speed.md").read_text()
    assert "`results/bench/ops_cuda.json` could not be read: not valid JSON" in page
    assert "predates the side-by-side rounds" in page  # the readable file is still rendered


def test_the_results_file_is_written_all_or_nothing(tmp_path, monkeypatch):
    """bench writes through safe_write (tested below): a failed write keeps the old file."""
    tiny = (bench.BenchCase("conv_tiny", "conv", 1, 2, 6, 6),)
    monkeypatch.setattr(bench, "CASES", tiny)
    old = '{"results": []}\n'
    (tmp_path / "ops_cpu.json").write_text(old)
    written: list[Path] = []

    def full_disk(texts):
        written.extend(Path(path) for path in texts)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bench, "write_texts", full_disk)
    argv = ["--device", "cpu", "--repeats", "1", "--threads", "1", "--no-memory", "--no-profile"]
    with pytest.raises(OSError):
        bench.main([*argv, "--output-dir", str(tmp_path)])
    assert written == [tmp_path / "ops_cpu.json"]
    assert (tmp_path / "ops_cpu.json").read_text() == old


def test_a_failed_rename_changes_no_file(tmp_path, monkeypatch):
    from repro import safe_write

    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text("old a")
    real_replace = os.replace

    def replace_then_fail(source, target):
        if Path(target).name == "b.json":
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(safe_write.os, "replace", replace_then_fail)
    with pytest.raises(safe_write.WriteFailed):
        safe_write.write_texts({first: "new a", second: "new b"})
    assert first.read_text() == "old a" and not second.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporaries left


def test_peak_memory_is_the_median_of_probes_taken_in_turns(tmp_path, monkeypatch):
    tiny = (bench.BenchCase("conv_tiny", "conv", 1, 2, 6, 6),)
    monkeypatch.setattr(bench, "CASES", tiny)
    calls: list[str] = []
    readings = {"repro": iter([30.0, 10.0, 20.0]), "reference": iter([50.0, None, 40.0])}

    def probe(case, name, device, threads):
        calls.append(name)
        return next(readings.get(name, iter([5.0, 5.0, 5.0])))

    monkeypatch.setattr(bench, "peak_memory_in_fresh_process", probe)
    argv = ["--device", "cpu", "--repeats", "1", "--threads", "1", "--no-profile"]
    assert bench.main([*argv, "--output-dir", str(tmp_path)]) == 0
    names = list(bench.CONV_IMPLEMENTATIONS)
    assert calls == names * bench.MEMORY_ROUNDS  # every implementation once per turn
    rows = {row["implementation"]: row for row in json.loads(
        (tmp_path / "ops_cpu.json").read_text())["results"]}  # fmt: skip
    assert rows["repro"]["peak_memory_mib"] == 20.0
    assert rows["repro"]["peak_memory_mib_rounds"] == [30.0, 10.0, 20.0]
    assert rows["reference"]["peak_memory_mib"] == 45.0  # a failed probe is left out
