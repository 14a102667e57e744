"""One bad ``metrics.json`` shows as *broken* (file and reason named); everything else renders.

Also the checks the audit, book and doctor commands make of their arguments before any work.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from repro.audit.claims import load_claims
from repro.audit.verdicts import BROKEN, VERDICTS, judge
from repro.cli.main import main
from repro.paths import book_dir, notebooks_dir, reported_dir, results_dir
from repro.results.recorder import Metric
from repro.results.store import BrokenResult, RunResult, broken_results, load_result

GOOD = "gdc_fig10_sampling"  # a committed result, copied into the project as it is
BAD = "gdc_single_image"  # claims test it; its file is replaced by a broken one
BAD_PATH = f"results/{BAD}/cpu/metrics.json"
BOOK = book_dir()  # the repository's, before a test points REPRO_ROOT elsewhere


def record(**changes: Any) -> dict[str, Any]:
    """A minimal valid ``metrics.json`` record, with top-level keys changed or removed."""
    data: dict[str, Any] = {
        "setting": {"seeds": 3},
        "metrics": {"table1/gdc/miou": asdict(Metric([1.0, 2.0, 4.0], seeds=[0, 1, 2]))},
        "parameters": {"seeds": [0, 1, 2]},
        "provenance": {"notebook_sha256": "0" * 64, "date": "2025-01-01T00:00:00"},
        "sources": {},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def with_metric(**fields: Any) -> str:
    """A record whose one metric has ``fields`` changed (``None`` removes a field)."""
    metric = {**asdict(Metric([1.0, 2.0, 4.0])), **fields}
    return json.dumps(
        record(metrics={"table1/gdc/miou": {k: v for k, v in metric.items() if v is not None}})
    )


VALID = json.dumps(record())
# (file content, what the reason must say)
BROKEN_FILES: dict[str, tuple[str, str]] = {
    "truncated": (VALID[: len(VALID) // 2], "not valid JSON, truncated?"),
    "empty": ("", "empty file"),
    "whitespace": ("  \n", "empty file"),
    "list": ("[1, 2]", "holds a JSON array, expected an object"),
    "number": ("3.5", "holds a JSON number, expected an object"),
    "nan token": (VALID.replace("1.0,", "NaN,", 1), "holds NaN, which is not JSON"),
    "infinity token": (with_metric(mean="__INF__").replace('"__INF__"', "Infinity"), "Infinity"),
    "mean NaN string": (with_metric(mean="NaN"), "'mean' must be a finite number, got 'NaN'"),
    "mean overflow": (
        with_metric(mean="__BIG__").replace('"__BIG__"', "1e999"),
        "'mean' must be a finite",
    ),
    "value overflow": (with_metric(values="__BIG__").replace('"__BIG__"', "[1e999]"), "finite"),
    "metric without mean": (with_metric(mean=None), "metric 'table1/gdc/miou' lacks 'mean'"),
    "metric without std and n": (with_metric(std=None, n=None), "lacks 'std', 'n'"),
    "metric not an object": (
        json.dumps(record(metrics={"table1/gdc/miou": [1.0]})),
        "metric 'table1/gdc/miou' is a JSON array, expected an object",
    ),
    "no values": (with_metric(values=[]), "'values' must be a non-empty list of numbers"),
    "mean not of its values": (
        with_metric(mean=9.0),
        "recorded mean 9.0 is not that of its values",
    ),
    "n not of its values": (with_metric(n=7), "'n' is 7 but there are 3 values"),
    "no metrics": (json.dumps(record(metrics=None)), "lacks 'metrics'"),
    "metrics not an object": (json.dumps(record(metrics=[])), "'metrics' must be an object"),
    "no parameters": (json.dumps(record(parameters=None)), "lacks 'parameters'"),
    "no provenance": (json.dumps(record(provenance=None)), "lacks 'provenance'"),
    "provenance without hash": (json.dumps(record(provenance={"date": "x"})), "'notebook_sha256'"),
    "empty object": ("{}", "lacks 'metrics', 'parameters', 'provenance'"),
    "figures not strings": (json.dumps(record(figures=[1])), "'figures' must be a list of strings"),
    "other notebook": (
        json.dumps(record(notebook="feasibility")),
        "records notebook 'feasibility'",
    ),
    "not UTF-8": ("\udcff", "cannot be read"),
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogateescape"))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root with the claims, the notebooks, one committed result and one broken."""
    shutil.copytree(reported_dir(), tmp_path / "results" / "reported")
    shutil.copytree(results_dir() / GOOD / "cpu", tmp_path / "results" / GOOD / "cpu")
    (tmp_path / "notebooks").symlink_to(notebooks_dir())
    write(tmp_path / BAD_PATH, BROKEN_FILES["truncated"][0])
    monkeypatch.setenv("REPRO_ROOT", str(tmp_path))
    return tmp_path


def test_a_valid_minimal_record_loads(project: Path) -> None:
    write(project / BAD_PATH, VALID)
    result = load_result(BAD, "cpu")
    assert isinstance(result, RunResult)
    assert result.metrics["table1/gdc/miou"].format() == "2.33 ± 1.53 (n=3)"
    assert broken_results("cpu") == []


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_a_bad_file_is_broken_with_file_and_reason(project: Path, case: str) -> None:
    text, reason = BROKEN_FILES[case]
    write(project / BAD_PATH, text)
    result = load_result(BAD, "cpu")
    assert isinstance(result, BrokenResult), result
    assert reason in result.reason
    assert result.describe().startswith(f"{BAD_PATH}: ")
    assert result.rerun == f"repro run {BAD} --profile cpu"
    assert broken_results("cpu") == [result]


def test_a_folder_named_metrics_json_is_broken(project: Path) -> None:
    (project / BAD_PATH).unlink()
    (project / BAD_PATH).mkdir()
    result = load_result(BAD, "cpu")
    assert isinstance(result, BrokenResult) and "cannot be read" in result.reason


def test_claims_on_a_broken_result_get_the_broken_verdict(project: Path) -> None:
    assert BROKEN in VERDICTS
    claims = [c for c in load_claims() if c.test and c.test.notebook == BAD]
    assert claims
    for claim in claims:
        verdict = judge(claim, "cpu")
        assert verdict.verdict == BROKEN
        assert BAD_PATH in verdict.reason and "not valid JSON" in verdict.reason
    good = [c for c in load_claims() if c.test and c.test.notebook == GOOD]
    assert all(judge(c, "cpu").verdict != BROKEN for c in good)


def test_audit_names_the_broken_file_and_exits_1_only_with_strict(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(project / "results" / "offline_dataset" / "cpu" / "metrics.json", "{}")
    assert main(["audit"]) == 0
    out = capsys.readouterr().out
    assert "[BROKEN]" in out
    assert any(f"[{v.upper()}]" in out for v in VERDICTS if v != BROKEN), "the rest is judged"
    assert f"{BAD_PATH}: not valid JSON" in out
    # a notebook that no claim tests is reported too
    assert "results/offline_dataset/cpu/metrics.json: lacks 'metrics'" in out
    assert f"re-run: repro run {BAD} --profile cpu" in out
    assert main(["audit", "--strict"]) == 1
    captured = capsys.readouterr()
    assert f"{BAD_PATH}: not valid JSON" in captured.out
    assert "2 broken result(s) at profile cpu (--strict)" in captured.err
    assert main(["audit", "--paper", "ddsm", "--strict"]) == 0, "no ddsm claim tests them"


def test_book_pages_show_the_broken_result_and_render_the_rest(project: Path) -> None:
    from repro.site.pages import write_generated

    write(project / BAD_PATH, BROKEN_FILES["metric without mean"][0])
    source = project / "src"
    shutil.copytree(BOOK, source, ignore=shutil.ignore_patterns("_build", "generated"))
    sections = write_generated(source)
    generated = source / "generated"
    reason = "metric 'table1/gdc/miou' lacks 'mean'"
    audit = (generated / "audit.md").read_text()
    assert f"`{BAD_PATH}`: {reason}" in audit
    assert '<span class="verdict-badge verdict-broken">broken</span>' in audit, "a claim's badge"
    status = (generated / "gdc_status.md").read_text()
    assert f"**broken**: `{BAD_PATH}`: {reason}" in status
    assert f"(generated/notebooks/{BAD}.md)" in status
    page = (generated / "notebooks" / f"{BAD}.md").read_text()
    assert page.startswith("# ") and BAD_PATH in page and reason in page
    assert f"generated/notebooks/{BAD}" in sections["gdc"]
    assert (generated / "notebooks" / f"{GOOD}.ipynb").exists(), "the good result still renders"
    for snippet in (generated / "metrics" / BAD).glob("*.md"):
        assert "**broken**" in snippet.read_text()


def test_book_strict_exits_1_after_building_when_a_result_is_broken(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import repro.site.build

    built: list[Path | None] = []

    def build(out: Path | None = None) -> Path:
        built.append(out)
        return project / "index.html"

    monkeypatch.setattr(repro.site.build, "build_book", build)
    assert main(["book", "--out", str(project / "site")]) == 0
    assert f"{BAD_PATH}: not valid JSON" in capsys.readouterr().out
    assert main(["book", "--out", str(project / "site"), "--strict"]) == 1
    assert "1 broken result(s) at profile cpu (--strict)" in capsys.readouterr().err
    assert len(built) == 2


def test_audit_unknown_profile_is_one_line_listing_the_profiles(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["audit", "--profile", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "repro: error: unknown profile 'bogus'; known profiles: smoke, cpu, full"


def refuse_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    import repro.site.build

    def fail(out: Path | None = None) -> Path:
        raise AssertionError("the book was built although --out was refused")

    monkeypatch.setattr(repro.site.build, "build_book", fail)


@pytest.mark.parametrize("below", [False, True], ids=["file", "below-a-file"])
def test_book_out_that_is_a_file_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], below: bool
) -> None:
    refuse_to_build(monkeypatch)
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    out = target / "site" if below else target
    assert main(["book", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"repro: error: --out {out} ")
    assert "a file; expected a folder" in err
    assert target.read_text() == "keep me"


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="runs as root: every folder is writable to root, so os.access cannot refuse one",
)
def test_book_out_in_a_read_only_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refuse_to_build(monkeypatch)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["book", "--out", str(locked / "site")]) == 2
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is not writable" in err


def test_doctor_names_the_folder_searched_for_each_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for marker in ("VOCdevkit/VOC2012/JPEGImages", "VOCdevkit/VOC2012/SegmentationClass"):
        (tmp_path / "voc" / marker).mkdir(parents=True)
    monkeypatch.setenv("REPRO_DATA_ROOT", str(tmp_path))
    assert main(["doctor"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"  voc: {tmp_path / 'voc'}" in lines
    assert (
        f"  voc_aug: not found (looked in {tmp_path / 'voc'}; missing benchmark_RELEASE/dataset/cls)"
        in lines
    )
    assert (
        f"  ade20k: not found (looked in {tmp_path / 'ade20k'}; missing "
        "ADEChallengeData2016/images, ADEChallengeData2016/annotations)" in lines
    )
    assert any(line.startswith(f"datasets (data root {tmp_path}") for line in lines)
