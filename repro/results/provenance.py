"""Provenance of a result: code versions, hashes, machine and time (``book/design.md``, "Results")."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import repro
from repro.paths import file_sha256, package_dir, repo_root

# Sources whose change makes a result stale: the package's Python and compiled-op sources.
SOURCE_SUFFIXES = (".py", ".cpp", ".cu", ".cuh", ".h")


def package_source_hash(root: Path | None = None) -> str:
    """SHA-256 over the package's source files (paths and contents, in sorted order)."""
    root = root or package_dir()
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def imported_source_hashes() -> dict[str, str]:
    """SHA-256 of every source file of the package that this process has imported.

    A result depends on the modules its notebook used, not on the whole package: these
    hashes make "stale" precise. When the sampling ops were imported, their C++/CUDA
    sources count too.
    """
    import sys

    root = package_dir()
    files: set[Path] = set()
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "repro" or name.startswith("repro.")) and path and path.endswith(".py"):
            files.add(Path(path).resolve())
    if "repro.ops" in sys.modules:
        files.update(p for p in (root / "ops").rglob("*") if p.suffix in SOURCE_SUFFIXES[1:])
    return {
        path.relative_to(root.parent).as_posix(): file_sha256(path)
        for path in sorted(files)
        if path.is_file() and root in path.parents
    }


# Packages that record, read and present results but compute none of the measured values:
# editing them does not make a result stale.
BOOKKEEPING = ("repro/results/", "repro/site/", "repro/audit/", "repro/cli/", "repro/notebooks/")


def changed_sources(recorded: dict[str, str], root: Path | None = None) -> list[str]:
    """Which of the recorded source files that compute results differ now (or are gone)."""
    base = (root or package_dir()).parent
    changed = []
    for relative, digest in recorded.items():
        if relative.startswith(BOOKKEEPING):
            continue
        path = base / relative
        if not path.is_file() or file_sha256(path) != digest:
            changed.append(relative)
    return changed


def git_state(root: Path | None = None) -> dict[str, Any]:
    """The commit and whether the tree had uncommitted changes (``None`` outside git)."""
    root = root or repo_root()

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=20, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {cpu_model()}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ops_backend() -> str:
    try:
        from repro.ops import backend
    except ImportError:  # the ops package failed to import: say so rather than fail the run
        return "unavailable"
    return backend()


def collect(
    notebook_hash: str, wall_time_s: float, seeds: list[int] | None = None
) -> dict[str, Any]:
    """Everything that identifies how and where a result was produced."""
    import torch

    return {
        "package_version": repro.__version__,
        "git": git_state(),
        "notebook_sha256": notebook_hash,
        "package_sha256": package_source_hash(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "ops_backend": _ops_backend(),
        "device": device_description(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "seeds": seeds,
        "wall_time_s": round(wall_time_s, 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
