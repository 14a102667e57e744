"""`repro run`: validation before anything runs, a papermill smoke run, atomic results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from repro.notebooks import runner
from repro.notebooks.spec import get_notebook

NAME = "gdc_fig10_sampling"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope", "1"], "unknown parameter 'nope'"),
        (["-p", "draws", "lots"], "parameter 'draws'"),
        (["-p", "offset_mode", "diagonal"], "parameter 'offset_mode'"),
        (["--profile", "gpu"], "profile 'gpu'"),
        (["-p", "draws", "3", "-p", "draws", "4"], "given twice"),
    ],
)
def test_invalid_parameters_exit_2_and_write_nothing(cli, tmp_path, args, message):
    done = cli("run", NAME, "--out", str(tmp_path / "out"), *args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_notebook_exits_2(cli, tmp_path):
    done = cli("run", "no_such_notebook", "--out", str(tmp_path))
    assert done.returncode == 2 and "unknown notebook" in done.stderr


@pytest.mark.slow
def test_smoke_run_through_papermill(cli, tmp_path):
    done = cli(
        "run",
        NAME,
        "--profile",
        "smoke",
        "--out",
        str(tmp_path),
        "-p",
        "draws",
        "12",
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / NAME / "smoke"
    record = json.loads((folder / "metrics.json").read_text())
    assert record["parameters"]["draws"] == 12
    assert record["parameters"]["seeds"] == [0]
    assert set(record["metrics"]) == {"radius/sigma_small", "radius/sigma_large"}
    small, large = record["metrics"]["radius/sigma_small"], record["metrics"]["radius/sigma_large"]
    assert large["mean"] > small["mean"] > 0
    prov = record["provenance"]
    for key in (
        "package_version",
        "git",
        "notebook_sha256",
        "package_sha256",
        "torch_version",
        "device",
        "cpu_count",
        "wall_time_s",
        "date",
        "seeds",
    ):
        assert key in prov, key
    assert prov["notebook_sha256"] == get_notebook(NAME).source_hash()
    assert (folder / "figures" / "fig10_sampling_positions.png").stat().st_size > 10_000
    executed = nbformat.read(folder / f"{NAME}.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "draws = 12" in injected[0].source
    assert not list(tmp_path.glob(f"{NAME}/.*")), "a staging folder was left behind"


def _previous_results(root: Path) -> Path:
    folder = root / NAME / "smoke"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text('{"metrics": {}, "marker": "previous"}')
    return folder


@pytest.mark.parametrize("failure", [RuntimeError("cell 3 raised"), KeyboardInterrupt()])
def test_failed_or_interrupted_run_keeps_previous_results(tmp_path, monkeypatch, failure):
    previous = _previous_results(tmp_path / "results")
    monkeypatch.setattr(runner, "failed_runs_dir", lambda: tmp_path / "failed")

    def execute(notebook, output_path, **kwargs):
        Path(output_path).write_text("partial")  # what papermill writes before the failure
        raise failure

    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    with pytest.raises(runner.RunFailed) as error:
        runner.run_notebook(NAME, {}, "smoke", tmp_path / "results", progress=False)
    assert json.loads((previous / "metrics.json").read_text())["marker"] == "previous"
    kept = error.value.kept
    assert kept is not None and (kept / f"{NAME}.ipynb").read_text() == "partial"
    assert str(kept) in str(error.value)
    assert not list((tmp_path / "results" / NAME).glob(".*")), "staging left behind"


def test_run_without_metrics_is_a_failure(tmp_path, monkeypatch):
    previous = _previous_results(tmp_path / "results")
    monkeypatch.setattr(runner, "failed_runs_dir", lambda: tmp_path / "failed")
    import papermill

    monkeypatch.setattr(
        papermill, "execute_notebook", lambda nb, out, **kw: Path(out).write_text("{}")
    )
    with pytest.raises(runner.RunFailed, match="without writing metrics.json"):
        runner.run_notebook(NAME, {}, "smoke", tmp_path / "results", progress=False)
    assert (previous / "metrics.json").exists()


def test_successful_run_replaces_previous_results(tmp_path, monkeypatch):
    previous = _previous_results(tmp_path / "results")
    import papermill

    def execute(notebook, output_path, cwd, **kwargs):
        (Path(cwd) / "metrics.json").write_text(json.dumps({"metrics": {}, "marker": "new"}))
        Path(output_path).write_text("{}")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    folder = runner.run_notebook(NAME, {}, "smoke", tmp_path / "results", progress=False)
    assert folder == previous
    assert json.loads((folder / "metrics.json").read_text())["marker"] == "new"
    shutil.rmtree(tmp_path / "results")
