"""Executed notebooks as readers see them: no machine paths, no library noise in outputs.

The book renders the executed notebook of every result. Two things in its outputs say
nothing about the result and leak the machine that ran it: absolute paths (the virtual
environment in a warning's location, the staging folder of the run, the home directory in a
cache folder's path, shown as ``~``) and warnings that a library prints about its own set-up
(tqdm's "IProgress not found", raised because the kernel has no widget front end).
:func:`scrub_notebook` removes both; it changes outputs only, never a cell's source, so a
scrubbed result stays current.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

from repro.paths import repo_root

_NOISE = (re.compile(r"TqdmWarning: IProgress not found"),)
"""Stream outputs matching one of these are a library's set-up warning and are dropped."""


def _path_replacements(extra: dict[str, str]) -> list[tuple[str, str]]:
    pairs = {
        **extra,
        str(Path(sys.prefix).resolve()): "<venv>",
        sys.prefix: "<venv>",
        str(repo_root()): "<repo>",
    }
    home = str(Path.home())
    if home not in ("", "/"):  # a cache folder under the home directory reads ~/.cache/...
        pairs[home.rstrip("/") + "/"] = "~/"
    # Longest first: the venv usually lies inside the repository.
    return sorted(pairs.items(), key=lambda item: len(item[0]), reverse=True)


_STAGING_PATH = re.compile(r"[^\s\"']*/\.[^/\s]+\.staging-[^/\s\"']+")
"""A path into a run's staging folder (which becomes the result's folder, hence ``.``)."""


def scrub_text(text: str, replacements: list[tuple[str, str]]) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    return _STAGING_PATH.sub(".", text)


def scrub_notebook(
    notebook: nbformat.NotebookNode, extra: dict[str, str] | None = None
) -> nbformat.NotebookNode:
    """Drop library set-up warnings and replace machine paths in every output, in place.

    ``extra`` maps further prefixes to their shown form (the run's staging folder → ``.``).
    """
    replacements = _path_replacements(extra or {})
    run_info = notebook.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):  # papermill's record of where it ran
        if isinstance(run_info.get(key), str):
            run_info[key] = scrub_text(run_info[key], replacements)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                if any(pattern.search(output.get("text", "")) for pattern in _NOISE):
                    continue
                output["text"] = scrub_text(output.get("text", ""), replacements)
            elif "data" in output:
                for kind in ("text/plain", "text/html", "text/markdown"):
                    if kind in output["data"]:
                        value = output["data"][kind]
                        joined = "".join(value) if isinstance(value, list) else value
                        output["data"][kind] = scrub_text(joined, replacements)
            elif output.get("output_type") == "error":
                output["traceback"] = [scrub_text(t, replacements) for t in output["traceback"]]
                output["evalue"] = scrub_text(output.get("evalue", ""), replacements)
            kept.append(output)
        cell["outputs"] = kept
    return notebook


def scrub_file(path: Path, extra: dict[str, str] | None = None) -> None:
    """Scrub the executed notebook at ``path`` (written back only when something changed)."""
    notebook = nbformat.read(path, as_version=4)
    before = nbformat.writes(notebook)
    after = nbformat.writes(scrub_notebook(notebook, extra))
    if after != before:
        path.write_text(after)
