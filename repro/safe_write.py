"""Output files that never destroy data: checked before any work, replaced all or nothing.

A command that writes results next to its inputs can lose data three ways, each seen in
``repro segment`` before this module: an output path that names one of the inputs (the photo
replaced by its mask), an output written in place and cut short (a full disk left a truncated
mask where a good one had been), and a pair of outputs of which only the first was written.
Hence two steps:

* :func:`check_output_path`, before the slow work: the target must not be an input (compared
  as files, so symlinks and hard links count), not a directory or other non-regular file, not
  an existing file unless overwriting was asked for, and its folder must be creatable and
  writable.
* :func:`write_all_or_nothing`, after it: every file goes to a temporary in its target's folder
  (same file system, so :func:`os.replace` is atomic), is flushed to disk, and only when all
  temporaries are complete are they renamed into place. If a rename fails, the targets already
  renamed get their old content back (or are removed if they did not exist), so the caller sees
  either every new file or none; temporaries and folders created for them are removed.

A symlinked target is resolved first: the file it points at is replaced and the link kept.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

Writer = Callable[[BinaryIO], None]
"""Writes one file's complete content to an open binary file (e.g. ``image.save(f, "PNG")``)."""


class OutputRefused(ValueError):
    """An output path that must not be written; the message says why (no path label)."""


class WriteFailed(OSError):
    """Writing the outputs failed; no target was changed. ``path`` is the target that failed."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write {path} ({reason}); no output file was changed")
        self.path = path


def same_file(first: str | os.PathLike, second: str | os.PathLike) -> bool:
    """Whether two paths name one file: same inode if both exist, else same resolved path.

    Comparing inodes catches hard links and symlinks; the resolved-path comparison covers a
    target that does not exist yet (two outputs given the same new name).
    """
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the folder a missing tree would go in)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_path(
    path: str | os.PathLike, *, inputs: Mapping[str, str | os.PathLike], force: bool
) -> None:
    """Refuse an output path that cannot be written without losing data or failing later.

    Args:
        path: the output file.
        inputs: the files read by the same run, by the name messages should use (``IMAGE``).
        force: whether an existing file may be replaced.

    Raises:
        OutputRefused: the target is an input, a directory or other non-regular file, an
            existing file (without ``force``), or lies in a folder that is missing and cannot
            be created or is not writable. Nothing is created.
    """
    target = Path(os.path.realpath(path))
    for name, input_path in inputs.items():
        if same_file(path, input_path):
            raise OutputRefused(f"{path} is the same file as {name} ({input_path})")
    if target.is_dir():
        raise OutputRefused(f"{path} is a directory; give a file name")
    if target.exists() and not target.is_file():
        raise OutputRefused(f"{path} exists and is not a regular file")
    if target.exists() and not force:
        raise OutputRefused(f"{path} exists; pass --force to overwrite it")
    folder = _nearest_existing(target.parent)
    if not folder.is_dir():
        raise OutputRefused(f"cannot create the folder of {path}: {folder} is a file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputRefused(f"folder {folder} is not writable")


@dataclass
class _Staged:
    """One target during :func:`write_all_or_nothing`: its temporary and, later, a backup."""

    target: Path
    temporary: Path | None = None
    backup: Path | None = None
    existed: bool = False
    created_folders: list[Path] = field(default_factory=list)


def _sibling_name(target: Path, tag: str) -> Path:
    """A hidden, unused name next to ``target`` (same folder, so renames stay atomic)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}.{tag}")


def _make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and missing ancestors; return the ones created, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
    return missing


def _write_temporary(staged: _Staged, write: Writer) -> None:
    """Write a target's complete content to a new temporary next to it and flush it to disk.

    Created with ``O_EXCL`` and mode 0o666 (the umask applies, as for a plain ``open``); an
    existing target's mode is copied so replacing a file does not change who may read it.
    """
    staged.created_folders = _make_folders(staged.target.parent)
    staged.existed = staged.target.exists()
    temporary = _sibling_name(staged.target, "tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    staged.temporary = temporary
    with os.fdopen(descriptor, "wb") as file:
        write(file)
        file.flush()
        os.fsync(file.fileno())
    if staged.existed:
        shutil.copymode(staged.target, temporary)


def _back_up(staged: _Staged) -> None:
    """Keep the old content of an existing target under a sibling name (for a rollback)."""
    if not staged.existed:
        return
    backup = _sibling_name(staged.target, "old")
    try:
        os.link(staged.target, backup)
    except OSError:  # a file system without hard links
        shutil.copy2(staged.target, backup)
    staged.backup = backup


def _remove_quietly(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def _clean_up(staged: list[_Staged], *, failed: bool) -> None:
    """Remove temporaries and backups; after a failure also the folders made for them."""
    for item in staged:
        _remove_quietly(item.temporary)
        _remove_quietly(item.backup)
    if not failed:
        return
    for item in staged:
        for folder in item.created_folders:
            with contextlib.suppress(OSError):  # not empty: something else was put there
                folder.rmdir()


def _roll_back(renamed: list[_Staged]) -> None:
    """Give targets already replaced their old content back; remove those that were new."""
    for item in reversed(renamed):
        with contextlib.suppress(OSError):
            if item.backup is not None:
                os.replace(item.backup, item.target)
                item.backup = None
            else:
                item.target.unlink()


@contextlib.contextmanager
def _failing_as(target: Path) -> Iterator[None]:
    """Turn an ``OSError`` while handling ``target`` into :class:`WriteFailed` naming it."""
    try:
        yield
    except WriteFailed:
        raise
    except OSError as error:
        raise WriteFailed(target, error.strerror or str(error)) from error


def write_all_or_nothing(files: Mapping[str | os.PathLike, Writer]) -> list[Path]:
    """Write every file completely, then move them all into place; or change nothing.

    Args:
        files: output path → function writing that file's content to an open binary file.
            Missing parent folders are created (and removed again on failure).

    Returns:
        The targets written (symlinks resolved).

    Raises:
        WriteFailed: an ``OSError`` (full disk, permissions, ...) while writing or renaming;
            every target keeps its old content (or stays absent) and no temporary remains.
            Any other exception from a writer propagates after the same clean-up.
    """
    staged = [_Staged(Path(os.path.realpath(path))) for path in files]
    renamed: list[_Staged] = []
    try:
        for item, write in zip(staged, files.values(), strict=True):
            with _failing_as(item.target):
                _write_temporary(item, write)
        for item in staged[:-1]:  # the last rename is never rolled back: no backup needed
            with _failing_as(item.target):
                _back_up(item)
        for item in staged:
            with _failing_as(item.target):
                os.replace(item.temporary, item.target)
            item.temporary = None
            renamed.append(item)
    except BaseException:
        _roll_back(renamed)
        _clean_up(staged, failed=True)
        raise
    _clean_up(staged, failed=False)  # the backups
    return [item.target for item in staged]


def write_texts(texts: Mapping[str | os.PathLike, str]) -> list[Path]:
    """:func:`write_all_or_nothing` for text files (UTF-8): a result file is never left
    half-written by an interrupted or failing write, and a set of them changes together."""
    return write_all_or_nothing(
        {path: (lambda file, text=text: file.write(text.encode())) for path, text in texts.items()}
    )
