"""A result is stale exactly when what produced it changed (cells, its profile, imported code)."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import nbformat
import pytest

from repro.notebooks.spec import load_spec
from repro.paths import notebooks_dir
from repro.results.recorder import Metric
from repro.results.store import RunResult, load_result

NAME = "gdc_fig10_sampling"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A project root with one notebook and a result that matches it."""
    (tmp_path / "notebooks").mkdir()
    source = tmp_path / "notebooks" / f"{NAME}.py"
    shutil.copy(notebooks_dir() / f"{NAME}.py", source)
    monkeypatch.setenv("REPRO_ROOT", str(tmp_path))
    spec = load_spec(source)
    folder = tmp_path / "results" / NAME / "cpu"
    folder.mkdir(parents=True)
    nbformat.write(spec.read(), folder / f"{NAME}.ipynb")
    record = {
        "metrics": {"radius/sigma_small": asdict(Metric([1.0, 2.0]))},
        "parameters": spec.resolve("cpu"),
        "provenance": {"notebook_sha256": hashlib.sha256(source.read_bytes()).hexdigest()},
        "sources": {},
    }
    (folder / "metrics.json").write_text(json.dumps(record))
    return tmp_path


def stale(project: Path, sources: dict[str, str] | None = None) -> list[str]:
    result = load_result(NAME, "cpu", project / "results")
    assert isinstance(result, RunResult), result
    if sources is not None:
        result.sources = sources
    return result.stale_reasons()


def edit(project: Path, old: str, new: str) -> None:
    path = project / "notebooks" / f"{NAME}.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_unchanged_result_is_current(project):
    assert stale(project) == []


def test_editing_another_profile_keeps_it_current(project):
    edit(project, "#       full: {}", "#       full: {draws: 1000}")
    assert stale(project) == []


def test_editing_its_profile_makes_it_stale(project):
    edit(project, "#       cpu: {}", "#       cpu: {draws: 7}")
    assert stale(project) == ["parameters of profile 'cpu' changed"]


def test_editing_a_cell_makes_it_stale(project):
    edit(project, ".abs().sum(dim=1) > 0", ".abs().sum(dim=1) >= 0")
    assert stale(project) == ["notebook changed"]


def test_editing_comments_or_layout_of_code_keeps_it_current(project):
    edit(project, "moving = tap_directions", "moving = (tap_directions")
    edit(project, ".abs().sum(dim=1) > 0", ".abs().sum(dim=1) > 0)  # a new comment")
    edit(project, "# kernel draws per sigma", "# draws of the kernel per sigma")
    assert stale(project) == []


def test_editing_markdown_makes_it_stale(project):
    edit(project, "## Draw the kernels", "## Drawing the kernels")
    assert stale(project) == ["notebook changed"]


def test_removed_notebook(project):
    (project / "notebooks" / f"{NAME}.py").unlink()
    assert stale(project) == ["notebook removed"]


def test_changed_compute_source_makes_it_stale_but_bookkeeping_does_not(project):
    reasons = stale(project, {"repro/modules/gaussian_offsets.py": "0" * 64})
    assert reasons == ["package source changed (repro/modules/gaussian_offsets.py)"]
    assert stale(project, {"repro/results/store.py": "0" * 64}) == []
