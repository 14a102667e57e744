"""`repro run`: validation before anything runs, a papermill smoke run, atomic results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
    assert kept.parent == tmp_path / "results" / "failed", "failed runs follow --out"
    assert str(kept) in str(error.value) and "left untouched" in str(error.value)
    assert not list((tmp_path / "results" / NAME).glob(".*")), "staging left behind"


def test_run_without_metrics_is_a_failure(tmp_path, monkeypatch):
    previous = _previous_results(tmp_path / "results")
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
        nbformat.write(nbformat.v4.new_notebook(), output_path)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    folder = runner.run_notebook(NAME, {}, "smoke", tmp_path / "results", progress=False)
    assert folder == previous
    assert json.loads((folder / "metrics.json").read_text())["marker"] == "new"
    shutil.rmtree(tmp_path / "results")


def _fake_execute(marker: str, before_write=None):
    """A stand-in for papermill that writes metrics (after ``before_write``, if given)."""

    def execute(notebook, output_path, cwd, **kwargs):
        if before_write is not None:
            before_write()
        (Path(cwd) / "metrics.json").write_text(json.dumps({"metrics": {}, "marker": marker}))
        nbformat.write(nbformat.v4.new_notebook(), output_path)

    return execute


def test_no_previous_results_is_not_called_untouched(tmp_path, monkeypatch):
    import papermill

    def execute(notebook, output_path, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    with pytest.raises(runner.RunFailed) as error:
        runner.run_notebook(NAME, {}, "smoke", tmp_path / "results", progress=False)
    assert "RuntimeError: boom" in str(error.value)
    assert "untouched" not in str(error.value)


def test_two_failures_in_the_same_second_get_distinct_folders(tmp_path, monkeypatch):
    import papermill

    def execute(notebook, output_path, **kwargs):
        Path(output_path).write_text("partial")
        raise RuntimeError("boom")

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    kept = []
    for _ in range(3):
        with pytest.raises(runner.RunFailed) as error:
            runner.run_notebook(NAME, {}, "smoke", tmp_path, progress=False)
        kept.append(error.value.kept)
    assert len(set(kept)) == 3 and all((k / f"{NAME}.ipynb").exists() for k in kept)


def test_runs_finishing_together_serialise_their_swap(tmp_path, monkeypatch, caplog):
    """Under a barrier the unlocked swap lost a run 13 times in 100; the last one must win."""
    import threading

    import papermill

    barrier = threading.Barrier(2)
    markers = threading.local()

    def execute(notebook, output_path, cwd, **kwargs):
        barrier.wait(timeout=30)
        _fake_execute(markers.name)(notebook, output_path, cwd)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    spec = get_notebook(NAME)
    errors: list[BaseException] = []

    def run(name: str) -> None:
        markers.name = name
        try:
            runner.run_notebook(NAME, {}, "smoke", tmp_path, progress=False, spec=spec)
        except BaseException as error:  # collected and asserted below
            errors.append(error)

    for round_ in range(15):
        threads = [threading.Thread(target=run, args=(f"{round_}-{i}",)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        marker = json.loads((tmp_path / NAME / "smoke" / "metrics.json").read_text())["marker"]
        assert marker in (f"{round_}-0", f"{round_}-1")
        assert sorted(p.name for p in (tmp_path / NAME).iterdir()) == ["smoke"], "leftovers"
    assert "this run finished last" in caplog.text


def test_abandoned_staging_folders_are_collected_by_the_next_run(tmp_path, monkeypatch):
    import papermill

    target = tmp_path / NAME
    dead = target / ".smoke.staging-999999999-x1"  # no such process
    dead.mkdir(parents=True)
    (dead / "partial.txt").write_text("from a run killed by SIGKILL")
    live = target / f".smoke.staging-{os.getpid()}-x2"  # a run still going
    live.mkdir()
    other_profile = target / ".cpu.staging-999999999-x3"
    other_profile.mkdir()
    monkeypatch.setattr(papermill, "execute_notebook", _fake_execute("new"))
    runner.run_notebook(NAME, {}, "smoke", tmp_path, progress=False)
    assert not dead.exists() and live.exists() and other_profile.exists()
    (collected,) = (tmp_path / "failed").iterdir()
    assert (collected / "partial.txt").read_text() == "from a run killed by SIGKILL"


@pytest.mark.parametrize(
    "args",
    [
        ["-p", "draws", "0"],
        ["-p", "sigmas", "0,0.3"],
        ["-p", "map_size", "0"],
        ["-p", "sigmas", "nan,inf"],
        ["-p", "sigmas", "0.1,,0.3"],
        ["-p", "seeds", "0,0"],
        ["-p", "sigmas", "-1,0.3"],
    ],
)
def test_values_the_notebook_cannot_use_are_refused_before_the_kernel(cli, tmp_path, args):
    done = cli("run", NAME, "--out", str(tmp_path / "out"), *args)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and f"parameter {args[1]!r}" in done.stderr
    assert not (tmp_path / "out").exists()


def test_bad_output_paths_are_refused_before_any_work(cli, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    for out, message in [
        (str(a_file), "is a file"),
        (str(a_file / "below"), "is a file"),
        ("", "empty path"),
    ]:
        done = cli("run", NAME, "--out", out)
        assert done.returncode == 2 and message in done.stderr, (out, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    assert a_file.read_text() == "mine"


def test_unwritable_output_folder_is_refused(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runner.tempfile, "mkdtemp", refuse)  # what a read-only mount does
    with pytest.raises(runner.RunRefused, match="cannot write in .*Permission denied"):
        runner.run_notebook(NAME, {}, "smoke", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_real_dataset_is_refused_with_its_layout(cli, tmp_path):
    done = cli(
        "run",
        "feasibility",
        "--profile",
        "full",
        "--out",
        str(tmp_path / "out"),
        env={"REPRO_DATA_ROOT": str(tmp_path / "data")},
    )
    assert done.returncode == 2, done.stderr
    for expected in ("dataset 'voc_aug'", str(tmp_path / "data" / "voc"), "Expected layout"):
        assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


SLEEPY = """# ---
# jupyter:
#   kernelspec: {display_name: Python 3, language: python, name: python3}
#   repro:
#     title: A notebook that waits to be stopped
#     profiles: {smoke: {}}
# ---

# %% tags=["parameters"]
profile: str = "smoke"  # set by `repro run`
output_dir: str = "."  # set by `repro run`

# %%
import pathlib
import time

pathlib.Path("started").write_text("yes")
time.sleep(120)
"""


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_keeps_its_output_and_says_so_in_one_line(tmp_path, sig, code):
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    (project / "notebooks" / "sleepy.py").write_text(SLEEPY)
    out = tmp_path / "out"
    env = {**os.environ, "REPRO_ROOT": str(project)}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    process = subprocess.Popen(
        [sys.executable, "-m", "repro", "run", "sleepy", "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A shell's background job starts with SIGINT ignored, and Python then installs no
        # Ctrl-C handler: give the run the terminal's default, as a user's shell does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 90
    while not list(out.glob("sleepy/.smoke.staging-*/started")):
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.2)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("running ")]
    assert len(lines) == 1 and f"interrupted by {sig.name}" in lines[0], stderr
    assert not list(out.glob("sleepy/.*")), "a staging folder was left behind"
    (kept,) = (out / "failed").iterdir()
    assert (kept / "started").exists() and (kept / runner.KERNEL_LOG).exists()
