"""``repro run``: validate parameters, execute a notebook with papermill, store its results.

Data flow (DESIGN.md): ``notebooks/X.py --papermill--> results/X/PROFILE/{metrics.json,
figures/, tables/, X.ipynb}``. The run writes into a staging folder beside the target and
moves it into place only when the notebook succeeded and wrote its metrics, so a failed or
interrupted run leaves the previous results untouched; its partial output is moved to
``runs/failed/`` for debugging.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repro.notebooks.spec import NotebookSpec, get_notebook
from repro.paths import failed_runs_dir, package_dir
from repro.results import provenance
from repro.results.recorder import METRICS_FILE
from repro.results.store import result_dir

log = logging.getLogger(__name__)


class RunFailed(RuntimeError):
    """The notebook raised, was interrupted or wrote no metrics; ``kept`` holds its output."""

    def __init__(self, message: str, kept: Path | None) -> None:
        super().__init__(message)
        self.kept = kept


def _seeds(parameters: dict[str, Any]) -> list[int] | None:
    if "seeds" in parameters:
        return list(parameters["seeds"])
    if "seed" in parameters:
        return [parameters["seed"]]
    return None


def _kernel_environment() -> None:
    # papermill's "python3" kernel starts the first `python` on PATH: make it this interpreter,
    # so the notebook sees the same environment (and the same torch) as `repro run`.
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    # ... and the same `repro` package, even when it is imported from a checkout that is not
    # installed (the kernel runs in the staging folder, where a relative PYTHONPATH would break).
    source_root = str(package_dir().parent)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if source_root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([source_root, *filter(None, paths)])


def _keep_failed(staging: Path, spec: NotebookSpec, profile: str) -> Path | None:
    if not staging.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = failed_runs_dir() / f"{spec.name}-{profile}-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging), target)
    return target


def _replace(final: Path, staging: Path) -> None:
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    staging.rename(final)
    if old.exists():
        shutil.rmtree(old)


def run_notebook(
    name: str,
    overrides: dict[str, Any] | None = None,
    profile: str = "smoke",
    out_root: Path | None = None,
    progress: bool = True,
    spec: NotebookSpec | None = None,
) -> Path:
    """Run notebook ``name`` at ``profile`` with ``overrides``; return the results folder.

    Raises :class:`~repro.notebooks.params.ParameterError` before anything is written when
    a parameter or the profile is invalid, and :class:`RunFailed` when the notebook fails.
    """
    import papermill

    spec = spec or get_notebook(name)
    parameters = spec.resolve(profile, overrides)  # validation first: nothing written on error
    notebook = spec.read()
    notebook_hash = spec.source_hash()  # of the source that runs, even if edited meanwhile
    final = result_dir(spec.name, profile, out_root)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{profile}.staging-{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    _kernel_environment()
    # papermill cannot read Literal[...] annotations and warns "unknown parameter" for them;
    # the parameters were validated above against the declared ones, so that warning is noise.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            notebook,
            str(staging / f"{spec.name}.ipynb"),
            parameters={**parameters, "profile": profile, "output_dir": "."},
            cwd=str(staging),
            progress_bar=progress,
            kernel_name="python3",
            language="python",
        )
        metrics_path = staging / METRICS_FILE
        if not metrics_path.exists():
            raise RuntimeError(f"the notebook finished without writing {METRICS_FILE}")
        record = json.loads(metrics_path.read_text())
        record["notebook"] = spec.name
        record["profile"] = profile
        record["parameters"] = parameters
        record["provenance"] = provenance.collect(
            notebook_hash, time.perf_counter() - started, _seeds(parameters)
        )
        metrics_path.write_text(json.dumps(record, indent=2) + "\n")
    except (Exception, KeyboardInterrupt) as error:
        kept = _keep_failed(staging, spec, profile)
        where = f"; its partial output is in {kept}" if kept else ""
        raise RunFailed(
            f"notebook {spec.name!r} ({profile}) failed: {type(error).__name__}: "
            f"{str(error).strip().splitlines()[-1] if str(error).strip() else ''}{where}. "
            f"Previous results in {final} were left untouched.",
            kept,
        ) from error
    _replace(final, staging)
    log.info("results written to %s", final)
    return final
