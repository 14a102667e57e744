"""Reading results back: ``results/<notebook>/<profile>/metrics.json`` and its staleness."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from repro.paths import notebooks_dir, results_dir
from repro.results.provenance import changed_sources
from repro.results.recorder import METRICS_FILE, Metric


def result_dir(notebook: str, profile: str, root: Path | None = None) -> Path:
    return (root or results_dir()) / notebook / profile


@dataclass
class RunResult:
    """A finished run: its metrics, parameters, setting and provenance."""

    notebook: str
    profile: str
    folder: Path
    metrics: dict[str, Metric]
    parameters: dict[str, Any]
    setting: dict[str, Any]
    provenance: dict[str, Any]
    figures: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    def stale_reasons(self) -> list[str]:
        """Why this result may no longer match the code (empty when it is current).

        Stale when the notebook's cells differ from those that ran (the executed notebook is
        kept with the result), when the parameters its profile resolves to now differ from
        those it ran with, or when a package source file the notebook imported (recorded
        with its hash) changed. Editing another profile of the notebook, or code the notebook
        never imported, leaves the result current.
        """
        reasons = self._notebook_changes()
        changed = changed_sources(self.sources)
        if changed:
            shown = ", ".join(changed[:3]) + (
                f" and {len(changed) - 3} more" if len(changed) > 3 else ""
            )
            reasons.append(f"package source changed ({shown})")
        return reasons

    def _notebook_changes(self) -> list[str]:
        from repro.notebooks.params import ParameterError
        from repro.notebooks.spec import load_spec

        source = notebooks_dir() / f"{self.notebook}.py"
        if not source.exists():
            return ["notebook removed"]
        if hashlib.sha256(source.read_bytes()).hexdigest() == self.provenance.get(
            "notebook_sha256"
        ):
            return []
        executed_path = self.folder / f"{self.notebook}.ipynb"
        if not executed_path.exists():
            return ["notebook changed"]
        spec = load_spec(source)
        executed = nbformat.read(executed_path, as_version=4)
        if _cell_sources(executed) != _cell_sources(spec.read()):
            return ["notebook changed"]
        try:
            current = spec.resolve(self.profile)
        except ParameterError:
            return [f"profile {self.profile!r} changed"]
        if json.loads(json.dumps(current)) != self.parameters:
            return [f"parameters of profile {self.profile!r} changed"]
        return []

    def setting_label(self) -> str:
        """The setting in one line, e.g. 'offline dataset, ResNet-18, 128 px, 8 epochs, 3 seeds'."""
        return "; ".join(f"{k}: {v}" for k, v in self.setting.items())


def _cell_sources(notebook: nbformat.NotebookNode) -> list[str]:
    """The cells' sources, without the cell papermill injects."""
    return [
        cell.source
        for cell in notebook.cells
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]


def load_result(notebook: str, profile: str, root: Path | None = None) -> RunResult | None:
    """The result of ``notebook`` at ``profile``, or ``None`` when it was never run."""
    folder = result_dir(notebook, profile, root)
    path = folder / METRICS_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return RunResult(
        notebook=notebook,
        profile=profile,
        folder=folder,
        metrics={k: Metric.from_dict(v) for k, v in data.get("metrics", {}).items()},
        parameters=data.get("parameters", {}),
        setting=data.get("setting", {}),
        provenance=data.get("provenance", {}),
        figures=data.get("figures", []),
        tables=data.get("tables", []),
        notes=data.get("notes", []),
        sources=data.get("sources", {}),
    )
