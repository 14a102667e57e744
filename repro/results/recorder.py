"""What a notebook records: measured values per seed, figures and tables.

A notebook creates one :class:`Recorder` on its ``output_dir`` parameter, adds metrics
(one value per seed), saves figures and tables, and calls :meth:`Recorder.write`. The
runner (``repro run``) then adds the parameters and the provenance to ``metrics.json``.
Files a run produces outside its results folder (pretrained weights in the cache, too large
to commit) are recorded with :meth:`Recorder.artefact`: name, size and SHA-256, so that the
committed ``metrics.json`` says which file is the result and a loader can check a copy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from repro.results.provenance import imported_source_hashes

METRICS_FILE = "metrics.json"
FIGURES_DIR = "figures"
TABLES_DIR = "tables"


def summarise(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof = 1; 0 for one value) and n."""
    n = len(values)
    if n == 0:
        raise ValueError("a metric needs at least one value")
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


@dataclass
class Metric:
    """One measured quantity: its value per seed and their summary."""

    values: list[float]
    seeds: list[int] | None = None
    unit: str = ""
    description: str = ""
    mean: float = field(init=False)
    std: float = field(init=False)
    n: int = field(init=False)

    def __post_init__(self) -> None:
        self.values = [float(v) for v in self.values]
        if any(not math.isfinite(v) for v in self.values):
            raise ValueError(f"metric values must be finite, got {self.values}")
        if self.seeds is not None and len(self.seeds) != len(self.values):
            raise ValueError(
                f"got {len(self.values)} values but {len(self.seeds)} seeds; give one seed per value"
            )
        self.mean, self.std, self.n = summarise(self.values)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metric:
        return cls(
            values=list(data["values"]),
            seeds=data.get("seeds"),
            unit=data.get("unit", ""),
            description=data.get("description", ""),
        )

    def format(self, digits: int = 2) -> str:
        if self.n == 1:
            return f"{self.mean:.{digits}f} (n=1)"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n})"


class Recorder:
    """Collects a run's metrics, figures and tables in ``output_dir``.

    Args:
        output_dir: the run's folder (the notebook's ``output_dir`` parameter).
        setting: the experimental setting in words and numbers (dataset, backbone,
            resolution, epochs, seeds, ...). Every number in the book is shown with it.
    """

    def __init__(self, output_dir: str | Path, setting: dict[str, Any] | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.setting: dict[str, Any] = dict(setting or {})
        self.metrics: dict[str, Metric] = {}
        self.figures: list[str] = []
        self.tables: list[str] = []
        self.notes: list[str] = []
        self.artefacts: dict[str, dict[str, Any]] = {}

    def add(
        self,
        key: str,
        values: Sequence[float] | float,
        seeds: Sequence[int] | None = None,
        unit: str = "",
        description: str = "",
    ) -> Metric:
        """Record a metric under ``key`` (e.g. ``table1/gdc/miou``): one value per seed."""
        if isinstance(values, int | float):
            values = [values]
        metric = Metric(list(values), list(seeds) if seeds is not None else None, unit, description)
        self.metrics[key] = metric
        return metric

    def save_figure(self, figure: Any, name: str, dpi: int = 120) -> Path:
        """Save a matplotlib figure as ``figures/<name>.png``."""
        folder = self.output_dir / FIGURES_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=dpi, bbox_inches="tight")
        self.figures.append(path.relative_to(self.output_dir).as_posix())
        return path

    def save_table(self, table: Any, name: str) -> Path:
        """Save a pandas DataFrame as ``tables/<name>.csv``."""
        folder = self.output_dir / TABLES_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.csv"
        table.to_csv(path, index=False)
        self.tables.append(path.relative_to(self.output_dir).as_posix())
        return path

    def note(self, text: str) -> None:
        """A sentence the book shows with the result (e.g. what the budget implies)."""
        self.notes.append(text)

    def artefact(self, name: str, path: str | Path, **details: Any) -> dict[str, Any]:
        """Record a file this run produced outside ``output_dir`` under ``name``.

        Stores the file's name (never its machine path), size and SHA-256, computed here from
        the file as written, with ``details`` (JSON-ready: what it is, its parameters).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"artefact {name!r}: {path} is not a file")
        digest = hashlib.sha256()
        with path.open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        entry = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": digest.hexdigest(),
            **details,
        }
        json.dumps(entry, allow_nan=False)  # details must be JSON (fails here, not at write)
        self.artefacts[name] = entry
        return entry

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "setting": self.setting,
            "metrics": {key: asdict(metric) for key, metric in self.metrics.items()},
            "figures": sorted(set(self.figures)),
            "tables": sorted(set(self.tables)),
            "notes": self.notes,
        }
        if self.artefacts:  # only where a notebook has some: other records keep their form
            record["artefacts"] = self.artefacts
        record["sources"] = imported_source_hashes()
        return record

    def write(self) -> Path:
        """Write ``metrics.json`` (the runner completes it with parameters and provenance)."""
        path = self.output_dir / METRICS_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path
