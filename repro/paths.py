"""Where the project's folders are: the repository root and its top-level parts.

The package is used from a checkout (editable install): notebooks, results and the book
live beside it. ``REPRO_ROOT`` overrides the root (tests point it at a temporary copy).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in blocks (weights files are tens of MB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def repo_root() -> Path:
    """The repository root: ``$REPRO_ROOT`` or the folder that holds the ``repro`` package."""
    env = os.environ.get("REPRO_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parent.parent


def notebooks_dir() -> Path:
    return repo_root() / "notebooks"


def results_dir() -> Path:
    return repo_root() / "results"


def reported_dir() -> Path:
    return results_dir() / "reported"


def book_dir() -> Path:
    return repo_root() / "book"


def failed_runs_dir() -> Path:
    """Where a failed run's partial output is kept for debugging (git-ignored)."""
    return repo_root() / "runs" / "failed"


def package_dir() -> Path:
    return Path(__file__).resolve().parent


def cache_dir(name: str) -> Path:
    """A cache folder of generated data: ``$REPRO_CACHE/<name>`` or ``~/.cache/repro/<name>``.

    Caches hold what a re-run can regenerate (the offline dataset, pseudo labels, finished
    and interrupted training runs); deleting them costs time, never results.
    """
    base = os.environ.get("REPRO_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "repro") / name
