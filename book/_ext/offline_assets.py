"""Sphinx extension: keep every page free of requests to other hosts.

Jupyter Book 1.x always loads sphinx-thebe, which writes the unpkg.com address of thebe into
every page (used only by a "live code" button this book does not show). This drops those
scripts, and any other script whose source or body names a remote host, from each page.
"""

from __future__ import annotations

from typing import Any

REMOTE = ("http://", "https://", "//")


def _is_remote_or_thebe(script: Any) -> bool:
    filename = str(getattr(script, "filename", script) or "")
    body = str(getattr(script, "attributes", {}).get("body", ""))
    if "thebe" in filename or "THEBE" in body:
        return True
    return filename.startswith(REMOTE) or any(host in body for host in REMOTE[:2])


def _drop_remote_scripts(
    app: Any, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [s for s in scripts if not _is_remote_or_thebe(s)]
    styles = context.get("css_files")
    if styles:
        context["css_files"] = [
            s for s in styles if not str(getattr(s, "filename", s) or "").startswith(REMOTE)
        ]


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_remote_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
