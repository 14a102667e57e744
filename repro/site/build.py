"""Build the book: copy ``book/`` to a build folder, generate pages from results, run Jupyter Book.

The build never executes a notebook and needs no network: MathJax is served from the
``jupyter_server_mathjax`` package's copy, placed in ``_static/mathjax``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from repro.paths import book_dir
from repro.site.pages import write_generated

log = logging.getLogger(__name__)


MATHJAX_EXTRA = Path("_extra", "_static", "mathjax")
"""Where the build's source holds MathJax; the site serves it as ``_static/mathjax``."""


class BookBuildError(RuntimeError):
    """Jupyter Book failed; the message holds the end of its log."""


def _mathjax_source() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as error:
        raise BookBuildError(
            "jupyter_server_mathjax is not installed: the book serves MathJax locally from it "
            "(pip install jupyter-server-mathjax)"
        ) from error
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def toc(sections: dict[str, list[str]]) -> dict:
    def chapter(file: str, pages: list[str]) -> dict:
        entry: dict = {"file": file}
        if pages:
            entry["sections"] = [{"file": page} for page in pages]
        return entry

    return {
        "format": "jb-book",
        "root": "intro",
        "parts": [
            {"caption": "Audit", "chapters": [chapter("audit", sections.get("audit", []))]},
            {"caption": "Learn", "chapters": [chapter("teaching", sections.get("teaching", []))]},
            {
                "caption": "The papers",
                "chapters": [chapter(p, sections.get(p, [])) for p in ("gdc", "dsnet", "ddsm")],
            },
            {
                "caption": "The project",
                "chapters": [chapter("project", sections.get("project", [])), {"file": "design"}],
            },
        ],
    }


def prepare_source(build: Path) -> Path:
    """The book's source with generated pages, toc and local MathJax, under ``build/_build/src``."""
    source = build / "_build" / "src"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(book_dir(), source, ignore=shutil.ignore_patterns("_build", "generated"))
    sections = write_generated(source)
    (source / "_toc.yml").write_text(yaml.safe_dump(toc(sections), sort_keys=False))
    # MathJax is an extra path (``html_extra_path: ["_extra"]`` in ``_config.yml``), copied to
    # the site's ``_static/mathjax`` as it is: Jupyter Book adds every .js file under a static
    # path to every page as a script, and MathJax's hundreds of parts loaded that way fail in
    # the browser (console errors, seen by tests/test_site_browser.py).
    static = source / MATHJAX_EXTRA
    if not static.exists():
        # The accessibility extensions fetch a speech engine from a CDN when a reader turns
        # them on: left out, so that nothing on the site can reach another host.
        shutil.copytree(_mathjax_source(), static, ignore=shutil.ignore_patterns("a11y"))
    return source


def build_book(out: Path | None = None) -> Path:
    """Build the site into ``OUT/_build/html`` (default ``book/_build/html``); return its index."""
    build = (out or book_dir()).resolve()
    build.mkdir(parents=True, exist_ok=True)
    source = prepare_source(build)
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [
        str(jupyter_book) if jupyter_book.exists() else "jupyter-book",
        "build",
        str(source),
        "--path-output",
        str(build),
        "--keep-going",
    ]
    log.info("running %s", " ".join(command))
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise BookBuildError(f"jupyter-book build failed (exit {done.returncode}):\n{tail}")
    index = build / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookBuildError(f"jupyter-book finished but {index} is missing")
    return index
