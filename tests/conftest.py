"""Shared fixtures. Tests never download; they use tiny data and temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """Run ``python -m repro ARGS`` in a subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "repro", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Every test writes caches (offline dataset, pseudo labels, training runs) to a
    session-private folder, never the user's ``~/.cache/repro``."""
    previous = os.environ.get("REPRO_CACHE")
    os.environ["REPRO_CACHE"] = str(tmp_path_factory.mktemp("repro_cache"))
    yield
    if previous is None:
        os.environ.pop("REPRO_CACHE", None)
    else:
        os.environ["REPRO_CACHE"] = previous


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The book built once per test session as CI builds it (``repro book --strict``).

    Shared by the tests of the built pages (``test_book.py``) and of the site in a browser
    (``test_site_browser.py``), so that the suite builds the site once.
    """
    from repro.cli.main import main

    out = tmp_path_factory.mktemp("book")
    assert main(["book", "--out", str(out), "--strict"]) == 0, "see the broken results above"
    return out / "_build" / "html"
