"""``repro run``: validate parameters, execute a notebook with papermill, store its results.

Data flow (``book/design.md``): ``notebooks/X.py --papermill--> results/X/PROFILE/{metrics.json,
figures/, tables/, X.ipynb}``. Everything that can be checked is checked before the kernel
starts: the parameters (with their declared constraints), the output folder, and the dataset
where the notebook declares one (a real dataset that is absent is refused with its expected
layout). The run writes into a staging folder beside the target and moves it into place only
when the notebook succeeded and wrote its metrics, so a failed, interrupted (Ctrl-C) or
terminated (SIGTERM) run leaves the previous results untouched; its partial output is moved
to a failed-runs folder (``runs/failed/`` of the repository, or ``OUT/failed/`` with
``--out OUT``). Two runs finishing into the same target swap their results one at a time
(a lock on the notebook's results folder): the last to finish wins, and says so. Staging
folders of runs that were killed outright (SIGKILL) are moved to the failed-runs folder by
the next run of the same target.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repro.notebooks.scrub import scrub_file
from repro.notebooks.spec import NotebookSpec, get_notebook
from repro.paths import failed_runs_dir, package_dir, results_dir
from repro.results import provenance
from repro.results.recorder import METRICS_FILE
from repro.results.store import result_dir

log = logging.getLogger(__name__)

KERNEL_LOG = "kernel.log"
"""The kernel process's own stderr, kept with a failed run's partial output."""
_STAGING = re.compile(r"^\.(?P<profile>[^.]+)\.staging-(?P<pid>[0-9]+)")
_MESSAGE_LINES = 12  # of a notebook's error message: enough for a missing dataset's layout


class RunRefused(ValueError):
    """The run cannot start (output folder unusable, dataset absent); nothing was written."""


class RunFailed(RuntimeError):
    """The notebook raised, was interrupted or wrote no metrics; ``kept`` holds its output.

    ``signal_number`` is the signal that stopped it (SIGINT, SIGTERM), else ``None``.
    """

    def __init__(self, message: str, kept: Path | None, signal_number: int | None = None) -> None:
        super().__init__(message)
        self.kept = kept
        self.signal_number = signal_number


class Terminated(BaseException):
    """Raised in the runner's thread when the process receives SIGTERM (like Ctrl-C's)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


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


def failed_dir(out_root: Path | None) -> Path:
    """Where failed runs go: ``OUT/failed`` with ``--out OUT``, else the repository's."""
    return failed_runs_dir() if out_root is None else out_root / "failed"


def check_output_root(root: Path) -> None:
    """Refuse a results root that is a file or cannot be written, before any work.

    Writability is probed by creating (and removing) a folder in the nearest existing
    ancestor: permission bits do not tell (root ignores them; an immutable or read-only
    mounted folder refuses even root).
    """
    if root.exists() and not root.is_dir():
        raise RunRefused(f"--out: {root} is a file, expected a folder")
    ancestor = root
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunRefused(f"--out: {ancestor} is a file, so {root} cannot be a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".repro-write-probe-", dir=ancestor))
    except OSError as error:
        raise RunRefused(f"--out: cannot write in {ancestor} ({error.strerror})") from None


def check_dataset(parameters: dict[str, Any]) -> None:
    """A notebook's declared real dataset must be on disk before the kernel starts.

    Notebooks name their data with a ``dataset`` parameter; ``offline`` is generated on
    demand. The loader's own check raises the message (dataset, the path looked at, the
    expected layout, where it is published).
    """
    name = parameters.get("dataset")
    if not isinstance(name, str) or name == "offline":
        return
    from repro.data.base import DatasetNotFoundError
    from repro.data.registry import build_dataset

    try:
        build_dataset(name, "val")
    except DatasetNotFoundError as error:
        raise RunRefused(str(error).rstrip()) from None
    except ValueError as error:
        raise RunRefused(f"parameter 'dataset': {error}") from None


def _unique_folder(parent: Path, stem: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    for count in range(1, 10_000):
        target = parent / (stem if count == 1 else f"{stem}-{count}")
        try:
            target.mkdir()
        except FileExistsError:
            continue
        target.rmdir()  # reserved by name; shutil.move() below creates it again
        return target
    raise RuntimeError(f"no free folder name for {stem} in {parent}")


def _keep_failed(staging: Path, spec_name: str, profile: str, out_root: Path | None) -> Path | None:
    if not staging.exists():
        return None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    target = _unique_folder(failed_dir(out_root), f"{spec_name}-{profile}-{stamp}")
    shutil.move(str(staging), target)
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def collect_abandoned(final: Path, out_root: Path | None) -> list[Path]:
    """Move staging folders of runs that died without cleaning up to the failed-runs folder.

    A staging folder whose process is gone (killed by SIGKILL, a power cut) would otherwise
    stay beside the results forever; those of live runs are left alone.
    """
    moved = []
    if not final.parent.is_dir():
        return moved
    for path in sorted(final.parent.iterdir()):
        match = _STAGING.match(path.name)
        if not match or match["profile"] != final.name or _pid_alive(int(match["pid"])):
            continue
        kept = _keep_failed(path, final.parent.name, f"{final.name}-abandoned", out_root)
        if kept is not None:
            log.warning("moved the staging folder of a run that died (%s) to %s", path.name, kept)
            moved.append(kept)
    return moved


def _staging_folder(final: Path, profile: str) -> Path:
    """A fresh staging folder beside ``final``, with the permissions of a plain ``mkdir``.

    ``mkdtemp`` makes it private (0700), and it becomes the results folder on success.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{profile}.staging-{os.getpid()}-", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` (flock on the folder itself: no lock file to leave)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def _stamp(final: Path) -> tuple[int, int] | None:
    try:
        stat = (final / METRICS_FILE).stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def _replace(final: Path, staging: Path, stamp_at_start: tuple[int, int] | None) -> None:
    """Swap ``staging`` into ``final``, one run at a time; say so when another run's results go."""
    with _locked(final.parent):
        if _stamp(final) != stamp_at_start:
            log.warning(
                "another run wrote %s while this one ran; this run finished last and its "
                "results replace those",
                final,
            )
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{threading.get_ident()}")
        if final.exists():
            final.rename(old)
        staging.rename(final)
        if old.exists():
            shutil.rmtree(old)


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """Turn SIGTERM into an exception (as SIGINT is), so the run can keep its partial output.

    Only the main thread can handle signals; elsewhere the default stays.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signal_number: int, frame: object) -> None:
        raise Terminated(signal_number)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _quiet_kernel_manager(log_path: Path) -> type:
    """A kernel manager whose kernel writes its own stderr to ``log_path``.

    The kernel's process-level messages (the "running over TCP" warning, the ZMQ traceback
    it prints when the runner closes its sockets on Ctrl-C) would otherwise interleave with
    the command's output; the cells' output reaches the executed notebook either way.
    """
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw["stderr"] = log_path.open("ab")
            try:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                kw["stderr"].close()  # the kernel holds its own copy of the descriptor

    return QuietKernelManager


def _failure_text(error: BaseException) -> str:
    """The first lines of what went wrong (a notebook's own message, not the traceback)."""
    if isinstance(error, Terminated | KeyboardInterrupt):
        name = error.args[0] if isinstance(error, Terminated) else "SIGINT"
        return f"interrupted by {name}"
    ename, evalue = getattr(error, "ename", None), getattr(error, "evalue", None)
    if ename is not None:  # papermill's PapermillExecutionError: the cell's exception
        text = f"{ename}: {evalue}"
    else:
        text = f"{type(error).__name__}: {error}"
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[:_MESSAGE_LINES])


def _fingerprint(
    spec: NotebookSpec, profile: str, record: dict[str, Any], out_root: Path | None
) -> dict[str, Any]:
    """The behavioural fingerprint of the code this run used (:mod:`repro.results.fingerprint`).

    A smoke run is its own fingerprint; any other profile runs the notebook at smoke once
    more (seconds to a minute). A run into the project's own results also refreshes the
    notebook's current fingerprint.
    """
    from repro.results import fingerprint as fp

    if profile == fp.FINGERPRINT_PROFILE:
        entry = {
            "fingerprint": fp.fingerprint_of(record["metrics"]),
            "sources": record.get("sources", {}),
            "machine": fp.machine_signature(),
        }
    else:
        try:
            with tempfile.TemporaryDirectory(prefix="repro-fingerprint-") as workdir:
                entry = fp.compute_fingerprint(spec.name, Path(workdir))
        except RunFailed as error:  # the result stands; it is judged by its sources instead
            log.warning("no fingerprint for this result: %s", error)
            return {"value": None, "profile": fp.FINGERPRINT_PROFILE, "error": str(error)}
    if out_root is None:
        fp.store_fingerprint(spec.name, entry)
    return {
        "value": entry["fingerprint"],
        "profile": fp.FINGERPRINT_PROFILE,
        "machine": entry["machine"],
    }


def run_notebook(
    name: str,
    overrides: dict[str, Any] | None = None,
    profile: str = "smoke",
    out_root: Path | None = None,
    progress: bool = True,
    spec: NotebookSpec | None = None,
) -> Path:
    """Run notebook ``name`` at ``profile`` with ``overrides``; return the results folder.

    Raises :class:`~repro.notebooks.params.ParameterError` (a parameter or the profile) or
    :class:`RunRefused` (the output folder, the dataset) before anything is written, and
    :class:`RunFailed` when the notebook fails, is interrupted or is terminated.
    """
    import papermill

    spec = spec or get_notebook(name)
    parameters = spec.resolve(profile, overrides)  # validation first: nothing written on error
    check_output_root(out_root or results_dir())
    check_dataset(parameters)
    notebook = spec.read()
    notebook_hash = spec.source_hash()  # of the source that runs, even if edited meanwhile
    final = result_dir(spec.name, profile, out_root)
    final.parent.mkdir(parents=True, exist_ok=True)
    collect_abandoned(final, out_root)
    had_previous = (final / METRICS_FILE).exists()
    stamp_at_start = _stamp(final)
    staging = _staging_folder(final, profile)
    _kernel_environment()
    # papermill cannot read Literal[...] annotations and warns "unknown parameter" for them;
    # the parameters were validated above against the declared ones, so that warning is noise.
    logging.getLogger("papermill").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        with _terminate_like_interrupt():
            papermill.execute_notebook(
                notebook,
                str(staging / f"{spec.name}.ipynb"),
                parameters={**parameters, "profile": profile, "output_dir": "."},
                cwd=str(staging),
                progress_bar=progress,
                kernel_name="python3",
                language="python",
                kernel_manager_class=_quiet_kernel_manager(staging / KERNEL_LOG),
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
        record["fingerprint"] = _fingerprint(spec, profile, record, out_root)
        metrics_path.write_text(json.dumps(record, indent=2) + "\n")
        scrub_file(
            staging / f"{spec.name}.ipynb",
            {str(staging.resolve()): ".", str(final.resolve()): "."},
        )
        (staging / KERNEL_LOG).unlink(missing_ok=True)
    except (Exception, KeyboardInterrupt, Terminated) as error:
        kept = _keep_failed(staging, spec.name, profile, out_root)
        where = f"; its partial output is in {kept}" if kept else ""
        untouched = f" Previous results in {final} were left untouched." if had_previous else ""
        signal_number = (
            error.signal_number
            if isinstance(error, Terminated)
            else signal.SIGINT
            if isinstance(error, KeyboardInterrupt)
            else None
        )
        raise RunFailed(
            f"notebook {spec.name!r} ({profile}) failed: {_failure_text(error)}{where}."
            + untouched,
            kept,
            signal_number,
        ) from error
    _replace(final, staging, stamp_at_start)
    log.info("results written to %s", final)
    return final
