"""Behavioural staleness: a result is current while its notebook's smoke fingerprint holds."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from test_staleness import NAME, project  # noqa: F401  (the fixture)

from repro.paths import package_dir
from repro.results import fingerprint as fp
from repro.results.provenance import imported_source_hashes
from repro.results.recorder import Metric
from repro.results.store import RunResult, load_result


def metrics(**values: list[float]) -> dict[str, dict]:
    return {key.replace("__", "/"): asdict(Metric(v)) for key, v in values.items()}


def test_fingerprint_ignores_timings_and_last_bits_but_not_results():
    base = fp.fingerprint_of(metrics(a__miou=[0.5, 0.6], a__train_images_per_s=[10.0]))
    assert base == fp.fingerprint_of(metrics(a__miou=[0.5, 0.6], a__train_images_per_s=[99.0]))
    assert base == fp.fingerprint_of(metrics(a__miou=[0.5, 0.6 + 1e-12]))
    assert base != fp.fingerprint_of(metrics(a__miou=[0.5, 0.61]))
    assert base != fp.fingerprint_of(metrics(a__miou=[0.5, 0.6], b__miou=[0.1]))


def _with_fingerprint(root: Path, value: str | None) -> None:
    path = root / "results" / NAME / "cpu" / "metrics.json"
    record = json.loads(path.read_text())
    record["fingerprint"] = {"value": value, "profile": "smoke"}
    record["sources"] = {"repro/ops/functional.py": "0" * 64}  # the source rule would say stale
    path.write_text(json.dumps(record))


def _current(root: Path, value: str, sources: dict[str, str] | None = None) -> None:
    entry = {"fingerprint": value, "sources": sources if sources is not None else _real_sources()}
    fp.store_fingerprint(NAME, entry, root / "results")


def _real_sources() -> dict[str, str]:
    import repro.ops  # noqa: F401  (so that its sources are among the imported ones)

    return {k: v for k, v in imported_source_hashes().items() if k.startswith("repro/ops/")}


def _result(root: Path) -> RunResult:
    result = load_result(NAME, "cpu", root / "results")
    assert isinstance(result, RunResult), result
    return result


def test_unchanged_fingerprint_keeps_a_result_current_whatever_the_files(project):  # noqa: F811
    _with_fingerprint(project, "abc")
    _current(project, "abc")
    result = _result(project)
    assert result.stale_reasons() == [] and result.staleness_rule() == "fingerprint"


def test_changed_fingerprint_makes_it_stale(project):  # noqa: F811
    _with_fingerprint(project, "abc")
    _current(project, "def")
    (reason,) = _result(project).stale_reasons()
    assert reason.startswith("behaviour changed") and "def" in reason and "abc" in reason


def test_fingerprints_of_older_code_cannot_vouch_for_a_result(project):  # noqa: F811
    _with_fingerprint(project, "abc")
    _current(project, "abc", {"repro/ops/functional.py": "1" * 64})
    (reason,) = _result(project).stale_reasons()
    assert reason.startswith("unverified") and "repro fingerprint" in reason


def test_without_fingerprints_the_source_rule_decides(project):  # noqa: F811
    _with_fingerprint(project, None)
    _current(project, "abc")
    result = _result(project)
    assert result.staleness_rule() == "sources"
    assert result.stale_reasons() == ["package source changed (repro/ops/functional.py)"]


@pytest.mark.slow
def test_a_default_that_changes_behaviour_changes_the_fingerprint(tmp_path):
    from repro.notebooks import runner

    def fingerprint(overrides: dict[str, str], out: str) -> str:
        folder = runner.run_notebook(NAME, overrides, "smoke", tmp_path / out, progress=False)
        return json.loads((folder / "metrics.json").read_text())["fingerprint"]["value"]

    first = fingerprint({}, "a")
    assert fingerprint({}, "b") == first, "the smoke profile must be deterministic"
    assert fingerprint({"draws": "13"}, "c") != first


def test_committed_fingerprints_name_only_package_sources():
    recorded = fp.load_fingerprints()
    assert recorded, "results/fingerprints.json is missing: run `repro fingerprint`"
    for name, entry in recorded.items():
        for source in entry["sources"]:
            assert (package_dir().parent / source).is_file(), (name, source)


def test_a_benchmark_has_no_fingerprint_and_falls_back_to_sources(project):  # noqa: F811
    assert fp.fingerprint_of(metrics(tool__seconds=[0.3], tool__cpu_seconds=[0.2])) is None
    _with_fingerprint(project, "abc")
    fp.store_fingerprint(NAME, {"fingerprint": None, "sources": {}}, project / "results")
    assert _result(project).staleness_rule() == "sources"


@pytest.mark.parametrize(
    ("key", "timing"),
    [
        ("fcn/train_images_per_s", True),
        ("fcn/train_minutes", True),
        ("dsnet_overhead/time_ratio", True),
        ("tool/coffee/cpu_seconds", True),
        ("runtime/minutes", True),
        ("bench/latency_ms", True),
        ("efficiency/ddsm/peak_memory", True),
        ("efficiency/ddsm/flops", False),
        ("table5/gdpp/params", False),  # holds "ms", counts parameters
        ("table5/gdpp/epochs50/miou", False),
        ("radius/sigma_small", False),
        ("labels/scribbles/labelled_fraction", False),
    ],
)
def test_timing_keys_are_told_by_whole_words(key: str, timing: bool) -> None:
    from repro.results.fingerprint import is_timing

    assert is_timing(key) is timing


def test_fingerprints_are_kept_per_kind_of_machine():
    old = {"fingerprint": "aaa", "sources": {"repro/x.py": "1"}}  # before machines were kept
    assert fp.known_fingerprints(old) == {fp.UNRECORDED_MACHINE: "aaa"}
    # First run on another kind of machine, same code: both values describe the code.
    here = {"fingerprint": "bbb", "sources": {"repro/x.py": "1"}, "machine": "m2"}
    merged = fp.merged_entry(old, here)
    assert merged["by_machine"] == {fp.UNRECORDED_MACHINE: "aaa", "m2": "bbb"}
    # Other code, same value on this machine: the behaviour did not change, keep the others.
    same = {"fingerprint": "bbb", "sources": {"repro/x.py": "2"}, "machine": "m2"}
    assert fp.merged_entry(merged, same)["by_machine"] == merged["by_machine"]
    # Other value on this machine: the behaviour changed, the other machines' values go.
    changed = {"fingerprint": "ccc", "sources": {"repro/x.py": "2"}, "machine": "m2"}
    assert fp.merged_entry(merged, changed)["by_machine"] == {"m2": "ccc"}
    # Other code on a kind of machine not seen before: nothing else can be vouched for.
    first = {"fingerprint": "ddd", "sources": {"repro/x.py": "3"}, "machine": "m3"}
    assert fp.merged_entry(merged, first)["by_machine"] == {"m3": "ddd"}
    assert len(fp.machine_signature()) == 12 and fp.machine_signature() == fp.machine_signature()


def test_a_result_is_current_when_another_machine_computed_its_fingerprint(project):  # noqa: F811
    _with_fingerprint(project, "abc")
    _current(project, "abc")  # the result's machine kind
    fp.store_fingerprint(
        NAME, {"fingerprint": "xyz", "sources": _real_sources(), "machine": "other"},
        project / "results",
    )  # fmt: skip
    entry = fp.load_fingerprints(project / "results")[NAME]
    assert entry["by_machine"] == {fp.UNRECORDED_MACHINE: "abc", "other": "xyz"}
    assert _result(project).stale_reasons() == []
    _with_fingerprint(project, "neither")
    (reason,) = _result(project).stale_reasons()
    assert "behaviour changed" in reason and "other machine" in reason


def test_recomputing_on_a_new_kind_of_machine_after_a_change_is_refused(project, capsys):  # noqa: F811
    """It would drop the other machines' values without knowing whether behaviour changed."""
    from repro.cli.main import main

    root = project / "results"
    real = _real_sources()
    changed = dict(real, **{next(iter(real)): "0" * 64})  # one source differs from the tree
    entries = {
        NAME: {"fingerprint": "aaa", "sources": changed, "by_machine": {"elsewhere": "aaa"}},
        "unchanged": {"fingerprint": "b", "sources": real, "by_machine": {"elsewhere": "b"}},
        "seen_here": {
            "fingerprint": "c", "sources": changed,
            "by_machine": {"elsewhere": "c", fp.machine_signature(): "d"},
        },
    }  # fmt: skip
    fp.fingerprints_path(root).write_text(json.dumps(entries))
    assert fp.unverifiable_here([NAME, "unchanged", "seen_here"], root) == [NAME]
    assert main(["fingerprint", NAME]) == 2
    error = capsys.readouterr().err
    assert f"no fingerprint yet for {NAME}" in error and "--drop-other-machines" in error
    assert fp.load_fingerprints(root) == entries  # nothing was recomputed or written
