"""Reading results back: ``results/<notebook>/<profile>/metrics.json`` and its staleness."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from repro.paths import file_sha256, notebooks_dir, repo_root, results_dir
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
    fingerprint: str | None = None

    def stale_reasons(self) -> list[str]:
        """Why this result may no longer match the code (empty when it is current).

        Stale when the notebook's cells differ from those that ran (the executed notebook is
        kept with the result; comments and layout of code do not count), or when the
        parameters its profile resolves to now differ from those it ran with. Then the code:
        by the behavioural check (:mod:`repro.results.fingerprint`) when the result has a
        fingerprint and the notebook a current one, else when a package source file the
        notebook imported (recorded with its hash) changed. :meth:`staleness_rule` says which.
        """
        reasons = self._notebook_changes()
        _, code_reasons = self._code_check()
        return reasons + code_reasons

    def staleness_rule(self) -> str:
        """``fingerprint`` (behaviour at the smoke profile) or ``sources`` (file hashes)."""
        return self._code_check()[0]

    def _code_check(self) -> tuple[str, list[str]]:
        from repro.results.fingerprint import fingerprint_verdict

        decided = fingerprint_verdict(self.notebook, self.fingerprint)
        if decided is not None:
            return decided
        changed = changed_sources(self.sources)
        if not changed:
            return "sources", []
        shown = ", ".join(changed[:3]) + (
            f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        )
        return "sources", [f"package source changed ({shown})"]

    def _notebook_changes(self) -> list[str]:
        from repro.notebooks.params import ParameterError
        from repro.notebooks.spec import load_spec

        source = notebooks_dir() / f"{self.notebook}.py"
        if not source.exists():
            return ["notebook removed"]
        if file_sha256(source) == self.provenance.get("notebook_sha256"):
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
    """The cells' sources, without the cell papermill injects; code cells as their syntax tree.

    Comments and formatting of a code cell do not change what it computes (the constraints a
    parameter's comment declares are checked before the kernel starts), so editing them leaves
    a result current; markdown is compared as text, since the book renders it.
    """
    return [
        _code_form(cell.source) if cell.cell_type == "code" else cell.source
        for cell in notebook.cells
        if "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    ]


def _code_form(source: str) -> str:
    try:
        return ast.dump(ast.parse(source))
    except SyntaxError:  # IPython magics: compare the text
        return source


@dataclass(frozen=True)
class BrokenResult:
    """A ``metrics.json`` that exists but cannot be read as a result, and why.

    What :func:`load_result` gives instead of raising, so that one bad file shows as *broken*
    (file and reason named) in the audit and the book while every other result renders.
    """

    notebook: str
    profile: str
    path: Path
    reason: str

    @property
    def shown_path(self) -> str:
        """The file relative to the repository root when inside it, else as given."""
        try:
            return self.path.resolve().relative_to(repo_root()).as_posix()
        except ValueError:
            return str(self.path)

    def describe(self) -> str:
        """``results/<notebook>/<profile>/metrics.json: <reason>``."""
        return f"{self.shown_path}: {self.reason}"

    @property
    def rerun(self) -> str:
        """The command that writes the file anew."""
        return f"repro run {self.notebook} --profile {self.profile}"


def load_result(
    notebook: str, profile: str, root: Path | None = None
) -> RunResult | BrokenResult | None:
    """The result of ``notebook`` at ``profile``: ``None`` when it was never run.

    The file is validated against what :class:`~repro.results.recorder.Recorder` and the
    runner write (:func:`parse_record`); a file that fails (unreadable, empty, truncated, not
    an object, NaN or infinite numbers, keys missing or of the wrong type) gives a
    :class:`BrokenResult` naming it and the reason, never an exception.
    """
    folder = result_dir(notebook, profile, root)
    path = folder / METRICS_FILE
    if not path.exists():
        return None
    try:
        data = read_record(path)
        _check_location(data, notebook, profile)
        return parse_record(data, notebook, profile, folder)
    except ValueError as error:
        return BrokenResult(notebook, profile, path, str(error))


def broken_results(profile: str, root: Path | None = None) -> list[BrokenResult]:
    """Every broken ``<root>/*/<profile>/metrics.json``, by notebook name."""
    base = root or results_dir()
    broken = []
    for path in sorted(base.glob(f"*/{profile}/{METRICS_FILE}")):
        result = load_result(path.parent.parent.name, profile, base)
        if isinstance(result, BrokenResult):
            broken.append(result)
    return broken


def read_record(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``ValueError`` saying why when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot be read ({error})") from error
    if not text.strip():
        raise ValueError("empty file")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"not valid JSON, truncated? ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from error
    if not isinstance(data, dict):
        raise ValueError(f"holds a JSON {_json_kind(data)}, expected an object")
    return data


def parse_record(data: dict[str, Any], notebook: str, profile: str, folder: Path) -> RunResult:
    """A :class:`RunResult` from a parsed ``metrics.json``; ``ValueError`` naming the problem.

    Required: ``metrics`` (an object of metrics, each with ``values``, ``mean``, ``std`` and
    ``n`` that agree), ``parameters`` (an object) and ``provenance`` (an object with the
    ``notebook_sha256`` staleness is judged by). Optional, checked when present: ``setting``,
    ``figures``, ``tables``, ``notes`` and ``sources``.
    """
    missing = [key for key in ("metrics", "parameters", "provenance") if key not in data]
    if missing:
        raise ValueError(f"lacks {', '.join(repr(k) for k in missing)}")
    metrics = _mapping(data, "metrics")
    provenance = _mapping(data, "provenance")
    if not isinstance(provenance.get("notebook_sha256"), str):
        raise ValueError("'provenance' lacks the notebook's hash 'notebook_sha256'")
    if not isinstance(provenance.get("date", ""), str):
        raise ValueError(f"'provenance.date' must be a string, got {_short(provenance['date'])}")
    if not isinstance(provenance.get("git") or {}, dict):
        raise ValueError(f"'provenance.git' must be an object, got {_short(provenance['git'])}")
    sources = _mapping(data, "sources", {})
    if not all(isinstance(v, str) for v in sources.values()):
        raise ValueError("'sources' must map file names to hashes (strings)")
    return RunResult(
        notebook=notebook,
        profile=profile,
        folder=folder,
        metrics={key: _parse_metric(key, entry) for key, entry in metrics.items()},
        parameters=_mapping(data, "parameters"),
        setting=_mapping(data, "setting", {}),
        provenance=provenance,
        figures=_strings(data, "figures"),
        tables=_strings(data, "tables"),
        notes=_strings(data, "notes"),
        sources=sources,
        fingerprint=_fingerprint(data),
    )


def _fingerprint(data: dict[str, Any]) -> str | None:
    entry = data.get("fingerprint")
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), str | None):
        raise ValueError("'fingerprint' must be an object with a string (or null) 'value'")
    return entry["value"]


def _check_location(data: dict[str, Any], notebook: str, profile: str) -> None:
    """A record naming another notebook or profile than its folder was copied there."""
    for key, expected in (("notebook", notebook), ("profile", profile)):
        if key in data and data[key] != expected:
            raise ValueError(
                f"records {key} {_short(data[key])} but lies in the folder of {key} {expected!r}"
            )


def _parse_metric(key: str, entry: object) -> Metric:
    where = f"metric {key!r}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} is a JSON {_json_kind(entry)}, expected an object")
    missing = [name for name in ("values", "mean", "std", "n") if name not in entry]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    values = entry["values"]
    if not isinstance(values, list) or not values or not all(map(_is_number, values)):
        raise ValueError(
            f"{where}: 'values' must be a non-empty list of numbers, got {_short(values)}"
        )
    for name in ("mean", "std"):
        if not _is_number(entry[name]) or not math.isfinite(entry[name]):
            raise ValueError(
                f"{where}: {name!r} must be a finite number, got {_short(entry[name])}"
            )
    n = entry["n"]
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{where}: 'n' must be an integer, got {_short(n)}")
    seeds = entry.get("seeds")
    if seeds is not None and not (
        isinstance(seeds, list)
        and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise ValueError(
            f"{where}: 'seeds' must be a list of integers or null, got {_short(seeds)}"
        )
    for name in ("unit", "description"):
        if not isinstance(entry.get(name, ""), str):
            raise ValueError(f"{where}: {name!r} must be a string, got {_short(entry[name])}")
    try:
        metric = Metric.from_dict(entry)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error
    _check_summary(where, entry, metric)
    return metric


def _check_summary(where: str, entry: dict[str, Any], metric: Metric) -> None:
    """The recorded ``mean``, ``std`` and ``n`` must be those of the recorded values."""
    if entry["n"] != metric.n:
        raise ValueError(f"{where}: 'n' is {entry['n']} but there are {metric.n} values")
    for name in ("mean", "std"):
        recorded, computed = entry[name], getattr(metric, name)
        if not math.isclose(recorded, computed, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(
                f"{where}: recorded {name} {recorded!r} is not that of its values ({computed!r})"
            )


def _mapping(
    data: dict[str, Any], key: str, default: dict[str, Any] | None = None
) -> dict[str, Any]:
    if key not in data and default is not None:
        return default
    value = data[key]
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be an object, got a JSON {_json_kind(value)}")
    return value


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key!r} must be a list of strings, got {_short(value)}")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reject_constant(name: str) -> float:
    raise ValueError(f"holds {name}, which is not JSON (every recorded number must be finite)")


def _json_kind(value: object) -> str:
    kinds = ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"))
    for kind, label in kinds:
        if isinstance(value, kind):
            return label
    return "null" if value is None else "number"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
