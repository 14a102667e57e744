"""Notebook specifications: what each notebook regenerates, its parameters and profiles.

Each notebook is a jupytext ``py:percent`` file in ``notebooks/``. Its YAML header carries a
``repro`` block::

    # ---
    # jupyter:
    #   repro:
    #     title: Sampling positions of a GDC kernel
    #     paper: gdc
    #     regenerates: [Fig. 10]
    #     profiles:
    #       smoke: {draws: 20}
    #       cpu: {}
    #       full: {}
    # ---

A profile is a named set of parameter defaults over the defaults of the ``parameters``
cell (``book/design.md``, "Profiles"). The cell tagged ``parameters`` declares every parameter
(see :mod:`repro.notebooks.params`); ``profile`` and ``output_dir`` are set by the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from repro.notebooks.params import RESERVED, Parameter, ParameterError, parse_parameters_cell
from repro.paths import file_sha256, notebooks_dir

PROFILES = ("smoke", "cpu", "full")


@dataclass
class NotebookSpec:
    """A notebook, its declared parameters and its profiles."""

    name: str
    path: Path
    title: str
    paper: str
    regenerates: list[str]
    parameters: dict[str, Parameter]
    profiles: dict[str, dict[str, Any]]
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def read(self) -> nbformat.NotebookNode:
        """The notebook converted in memory from its jupytext source."""
        return jupytext.read(self.path, fmt="py:percent")

    def source_hash(self) -> str:
        return file_sha256(self.path)

    def resolve(
        self, profile: str, overrides: dict[str, str | Any] | None = None
    ) -> dict[str, Any]:
        """Parameters for a run: cell defaults, then the profile's, then the overrides.

        Raises :class:`ParameterError` for an unknown profile, an unknown parameter, or a
        value of the wrong type or outside the allowed set, before anything runs.
        """
        if profile not in self.profiles:
            raise ParameterError(
                f"profile {profile!r} is not defined for notebook {self.name!r}; "
                f"allowed: {', '.join(self.profiles)}"
            )
        values = {name: param.default for name, param in self.parameters.items()}
        for source, items in (
            (f"profile {profile!r}", self.profiles[profile]),
            ("-p", overrides or {}),
        ):
            for key, raw in items.items():
                if key in RESERVED:
                    raise ParameterError(
                        f"parameter {key!r} is set by `repro run` itself ({source}); "
                        "use --profile or --out instead"
                    )
                if key not in self.parameters:
                    raise ParameterError(
                        f"unknown parameter {key!r} for notebook {self.name!r} ({source}); "
                        f"declared: {', '.join(self.parameters)}"
                    )
                values[key] = self.parameters[key].coerce(raw)
        return values


def _parameters_source(notebook: nbformat.NotebookNode, path: Path) -> str:
    for cell in notebook.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell.source
    raise ValueError(f"{path}: no cell is tagged 'parameters'")


def load_spec(path: Path) -> NotebookSpec:
    """Read one notebook's specification from its jupytext source."""
    notebook = jupytext.read(path, fmt="py:percent")
    meta = notebook.metadata.get("repro")
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: the jupytext header has no 'repro' block")
    params = parse_parameters_cell(_parameters_source(notebook, path))
    declared = {p.name: p for p in params if p.name not in RESERVED}
    missing = [name for name in RESERVED if name not in {p.name for p in params}]
    if missing:
        raise ValueError(f"{path}: the parameters cell must declare {', '.join(missing)}")
    profiles = {name: dict(values or {}) for name, values in (meta.get("profiles") or {}).items()}
    unknown_profiles = sorted(set(profiles) - set(PROFILES))
    if unknown_profiles:
        raise ValueError(f"{path}: unknown profiles {unknown_profiles}; allowed: {PROFILES}")
    spec = NotebookSpec(
        name=path.stem,
        path=path,
        title=str(meta.get("title", path.stem)),
        paper=str(meta.get("paper", "")),
        regenerates=list(meta.get("regenerates", [])),
        parameters=declared,
        profiles=profiles,
        description=str(meta.get("description", "")),
        extra={
            k: v
            for k, v in meta.items()
            if k not in {"title", "paper", "regenerates", "profiles", "description"}
        },
    )
    for profile in profiles:  # a profile naming an undeclared parameter is a bug of the notebook
        spec.resolve(profile)
    return spec


def discover(folder: Path | None = None) -> dict[str, NotebookSpec]:
    """Every notebook in ``notebooks/``, by name."""
    folder = folder or notebooks_dir()
    return {path.stem: load_spec(path) for path in sorted(folder.glob("*.py"))}


def get_notebook(name: str, folder: Path | None = None) -> NotebookSpec:
    specs = discover(folder)
    if name not in specs:
        raise ParameterError(
            f"unknown notebook {name!r}; available: {', '.join(specs) or '(none)'}"
        )
    return specs[name]
