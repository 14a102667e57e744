"""Executed notebooks carry no machine paths and no library set-up warnings."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from repro.notebooks.scrub import scrub_notebook
from repro.paths import repo_root, results_dir


def test_paths_and_tqdm_noise_are_removed_but_output_kept():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [
        nbformat.v4.new_output(
            "stream",
            name="stderr",
            text=f"{sys.prefix}/lib/tqdm/auto.py:21: TqdmWarning: IProgress not found.\n",
        ),
        nbformat.v4.new_output("stream", name="stdout", text=f"wrote {repo_root()}/x.png\n"),
        nbformat.v4.new_output("stream", name="stdout", text="wrote /run/stage/y.csv\n"),
    ]
    notebook.cells = [cell]
    notebook.metadata["papermill"] = {"output_path": "/run/stage/n.ipynb"}
    scrub_notebook(notebook, {"/run/stage": "."})
    texts = [output.text for output in notebook.cells[0].outputs]
    assert texts == ["wrote <repo>/x.png\n", "wrote ./y.csv\n"]
    assert notebook.metadata["papermill"]["output_path"] == "./n.ipynb"
    assert cell.source == "print(1)"


def test_the_home_directory_is_shown_as_a_tilde(monkeypatch, tmp_path):
    home = tmp_path / "someone"
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: home))
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("cache")
    cell.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={"text/plain": f"{{'folder': '{home}/.cache/repro/pseudo_labels/1b80'}}"},
            execution_count=1,
        )
    ]
    notebook.cells = [cell]
    scrub_notebook(notebook)
    shown = notebook.cells[0].outputs[0]["data"]["text/plain"]
    assert shown == "{'folder': '~/.cache/repro/pseudo_labels/1b80'}"


def test_committed_executed_notebooks_name_no_machine_path():
    for path in sorted(Path(results_dir()).glob("*/*/*.ipynb")):
        if path.parent.name.startswith("."):  # a run in progress stages there (git-ignored)
            continue
        text = path.read_text()
        for machine_path in (str(repo_root()), sys.prefix):
            assert machine_path not in text, (path, machine_path)
        # Whatever machine ran it: no installed-package path, no staging folder of the runner.
        for trace in ("site-packages", ".staging-", "IProgress not found"):
            assert trace not in text, (path, trace)
