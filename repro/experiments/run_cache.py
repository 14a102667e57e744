"""Where training runs keep their checkpoints and finished outcomes, so a re-run resumes.

Every (model, configuration, data, training recipe, seed) run of a table has a folder
``$REPRO_CACHE/runs/<key>/`` (default ``~/.cache/repro/runs``). While it trains, the engine
writes its per-epoch checkpoint there (:mod:`repro.engine.checkpoint`); when it finishes, its
outcome is written as ``outcome.json`` and the checkpoint deleted. A notebook re-run with the
same parameters after an interruption therefore skips the runs already finished and
continues the unfinished one from its last epoch, ending with the metrics an uninterrupted
run would have (the engine's resumption is exact, :mod:`repro.engine.train`).

The key hashes everything that decides the outcome: the job's description, the thread count
(float sums are reordered across thread counts) and the package's code (its syntax, without
comments or docstrings). A code change therefore never reuses an outcome computed by other
code; it only costs a re-run.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from repro.engine.config import RESUME_FREE_FIELDS
from repro.paths import cache_dir, package_dir

OUTCOME_FILE = "outcome.json"
CHECKPOINTS_DIR = "checkpoints"
_CODE_SUFFIXES = (".py", ".cpp", ".cu", ".cuh", ".h")


def runs_cache_dir() -> Path:
    """``$REPRO_CACHE/runs`` if the variable is set, else ``~/.cache/repro/runs``."""
    return cache_dir("runs")


def _code_form(path: Path) -> bytes:
    """A Python file as its syntax tree without docstrings (comments and layout are not in it
    either); other sources as their bytes. Editing prose then keeps the runs cached."""
    if path.suffix != ".py":
        return path.read_bytes()
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:
        return path.read_bytes()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


@cache
def package_code_hash() -> str:
    """SHA-256 over the package's code (Python without docstrings, the ops' C++/CUDA)."""
    digest = hashlib.sha256()
    root = package_dir()
    for path in sorted(p for p in root.rglob("*") if p.suffix in _CODE_SUFFIXES):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(_code_form(path))
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return value.as_posix()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def run_key(description: dict[str, Any], threads: int) -> str:
    """The cache key of one run: its description, thread count and the package's code."""
    train = dict(description.get("train_config", {}))
    for name in RESUME_FREE_FIELDS:  # where it runs does not change what it computes
        train.pop(name, None)
    identity = {
        **_jsonable(description),
        "train_config": _jsonable(train),
        "threads": threads,
        "code": package_code_hash(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object written by :func:`write_json`, or ``None`` (absent or unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (a flushed temporary renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_outcome(run_dir: Path) -> dict[str, Any] | None:
    """A finished run's outcome, or ``None`` (not finished, or its file unreadable)."""
    return read_json(run_dir / OUTCOME_FILE)


def write_outcome(run_dir: Path, outcome: dict[str, Any]) -> None:
    """Write ``outcome.json`` atomically, then drop the checkpoint it no longer needs."""
    write_json(run_dir / OUTCOME_FILE, outcome)
    shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
