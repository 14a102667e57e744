"""Per-epoch checkpoints: everything a run needs to continue exactly where it stopped
(model, optimizer, schedule position, RNG states, history, configuration).

Files are written to a temporary name and moved into place, so an interruption while
saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "last.pt"
CHECKPOINT_FORMAT_VERSION = 1


def checkpoint_path(run_dir: str | os.PathLike) -> Path:
    """Where a run directory keeps its latest checkpoint."""
    return Path(run_dir) / "checkpoints" / CHECKPOINT_NAME


def save_atomically(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` all or nothing: a temporary in the same folder, flushed to
    disk, then renamed over ``path`` (a crash or full disk leaves the previous file intact)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    try:
        with open(temporary, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Atomically writes ``state`` (plus a format version) to ``path``."""
    return save_atomically({"format_version": CHECKPOINT_FORMAT_VERSION, **state}, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Loads a checkpoint written by :func:`save_checkpoint` onto the CPU.

    ``weights_only=False`` because the file holds RNG states (Python tuples, NumPy
    arrays); only load checkpoints this project wrote.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=False)
    version = state.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format_version {version!r}, expected "
            f"{CHECKPOINT_FORMAT_VERSION}"
        )
    return state
