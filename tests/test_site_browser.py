"""The built site in a real browser: headless Chromium, network blocked (issue 18).

Every page of the site is opened from a local HTTP server in Debian's ``chromium``, driven over
the Chrome DevTools Protocol (a small client on ``websocket-client``). A page fails on

* a request to any other host (intercepted, blocked and recorded),
* a console error or an uncaught exception,
* an image that does not load,
* a link to a page or anchor of the site that does not exist,

and the audit page fails when its tables do not fit a 1280 px wide window (every claim's block
opened). Screenshots of the landing page and the audit page are saved under
``book/_build/screenshots/`` (``REPRO_SCREENSHOTS`` names another folder) for CI to keep.

Without Chromium (``chromium``/``chromium-browser`` on PATH, or ``REPRO_CHROMIUM``) the test is
skipped with that reason; ``.ci/run`` installs the package where it is absent and sets
``REPRO_REQUIRE_CHROMIUM=1``, under which a missing browser fails the test instead.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 900
PAGE_TIMEOUT_S = 30.0
SETTLE_S = 0.3
"""After the load event: time for late console errors and requests (MathJax typesetting)."""


def find_chromium() -> str | None:
    """``REPRO_CHROMIUM``, else Debian's ``chromium`` (or ``chromium-browser``) on PATH."""
    named = os.environ.get("REPRO_CHROMIUM")
    if named:
        return shutil.which(named) or (named if Path(named).is_file() else None)
    return shutil.which("chromium") or shutil.which("chromium-browser")


class CDP:
    """A minimal Chrome DevTools Protocol client over one page session (flattened)."""

    def __init__(self, ws_url: str, on_request: Callable[[dict], None]) -> None:
        import websocket  # websocket-client, a dev dependency

        self.on_request = on_request  # answers each paused request (Fetch domain)
        self.ws = websocket.create_connection(ws_url, timeout=PAGE_TIMEOUT_S, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None
        self.replies: dict[int, dict] = {}
        self.waiting: set[int] = set()
        self.timeout_error = websocket.WebSocketTimeoutException

    def post(self, method: str, params: dict | None = None, session: bool = True) -> int:
        """Send a command without waiting for its reply (which :meth:`_read` drops)."""
        self.next_id += 1
        message: dict = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        return self.next_id

    def send(self, method: str, params: dict | None = None, session: bool = True) -> dict:
        """Send a command and return its result, handling the events that come first."""
        wanted = self.post(method, params, session)
        self.waiting.add(wanted)
        self.ws.settimeout(PAGE_TIMEOUT_S)
        while wanted not in self.replies:
            self._read(json.loads(self.ws.recv()))
        self.waiting.discard(wanted)
        reply = self.replies.pop(wanted)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _read(self, message: dict) -> None:
        if "id" in message:
            if message["id"] in self.waiting:
                self.replies[message["id"]] = message
        else:
            self._event(message)

    def _event(self, event: dict) -> None:
        if event.get("method") == "Fetch.requestPaused":
            self.on_request(event["params"])
        else:
            self.events.append(event)

    def pump(self, seconds: float, until: str | None = None) -> bool:
        """Read events for ``seconds`` (or until event ``until`` arrives: True)."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.ws.settimeout(left)
            try:
                message = json.loads(self.ws.recv())
            except self.timeout_error:  # nothing more within the time
                return False
            self._read(message)
            if until is not None and message.get("method") == until:
                return True

    def evaluate(self, expression: str) -> object:
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")


@dataclass
class PageReport:
    """What went wrong on one page."""

    url: str
    external: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        kinds = {
            "request to another host": self.external,
            "console error": self.console,
            "image not loaded": self.images,
            "broken internal link": self.links,
            "failed request": self.failed,
        }
        return [f"{self.url}: {kind}: {item}" for kind, items in kinds.items() for item in items]


class Browser:
    """Headless Chromium with one page, every request outside ``origin`` blocked."""

    def __init__(self, binary: str, origin: str, profile: Path) -> None:
        self.origin = origin
        command = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            # A second guard: no name resolves, so nothing reaches another host even unseen.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={WIDTH},{HEIGHT}",
            "about:blank",
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.external: list[str] = []
        self.client = CDP(self._browser_url(), self._on_request)
        target = self.client.send("Target.createTarget", {"url": "about:blank"})
        attached = self.client.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self.client.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.client.send(f"{domain}.enable")
        self.client.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self._metrics(HEIGHT)

    def _browser_url(self) -> str:
        assert self.process.stderr is not None
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        seen = []
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            seen.append(line)
            found = re.search(r"DevTools listening on (ws://\S+)", line)
            if found:
                # Keep reading stderr so that Chromium never blocks on a full pipe.
                threading.Thread(target=self._drain, daemon=True).start()
                return found.group(1)
        raise RuntimeError("Chromium did not start:\n" + "".join(seen[-20:]))

    def _drain(self) -> None:
        assert self.process.stderr is not None
        for _ in self.process.stderr:
            pass

    def _on_request(self, params: dict) -> None:
        url = params["request"]["url"]
        local = url.startswith((self.origin + "/", "data:", "blob:", "about:"))
        if local:
            self.client.post("Fetch.continueRequest", {"requestId": params["requestId"]})
        else:
            self.external.append(url)
            self.client.post(
                "Fetch.failRequest",
                {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
            )

    def open(self, url: str) -> PageReport:
        """Load ``url``, wait for its load event, and collect what went wrong."""
        report = PageReport(url)
        self.external.clear()
        self.client.events.clear()
        self.client.send("Page.navigate", {"url": url})
        if not self.client.pump(PAGE_TIMEOUT_S, until="Page.loadEventFired"):
            report.failed.append(f"no load event within {PAGE_TIMEOUT_S} s")
        self.client.pump(SETTLE_S)
        report.images = [
            str(src)
            for src in self.client.evaluate(
                """Promise.all([...document.images].map(img => {
                    img.loading = "eager";
                    return img.decode().then(() => null, () => img.currentSrc || img.src);
                })).then(found => found.filter(Boolean))"""
            )
            or []
        ]
        self.client.pump(SETTLE_S)
        report.external = list(self.external)
        for event in self.client.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                report.console.append(" ".join(texts))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                report.console.append(
                    str(details.get("exception", {}).get("description") or details.get("text"))
                )
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                report.console.append(f"{entry.get('text')} {entry.get('url', '')}".strip())
            elif method == "Network.responseReceived":
                status = params["response"]["status"]
                if status >= 400:
                    report.failed.append(f"{params['response']['url']} ({status})")
        return report

    def links(self) -> list[str]:
        """Every link of the open page, resolved (``a.href``)."""
        return list(
            self.client.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)") or []
        )

    def overflow(self, selector: str) -> list[str]:
        """Elements of ``selector`` (every ``details`` opened) wider than the window or whose
        content reaches past their right edge; and the page itself scrolling sideways."""
        script = f"""(() => {{
            document.querySelectorAll("details").forEach(d => d.open = true);
            const width = document.documentElement.clientWidth;
            const out = [];
            if (document.documentElement.scrollWidth > width + 1)
                out.push(`page scrolls sideways: ${{document.documentElement.scrollWidth}} px > ${{width}} px`);
            const tables = [...document.querySelectorAll({json.dumps(selector)})];
            if (!tables.length) out.push("no element matches {selector}");
            tables.forEach((table, i) => {{
                const box = table.getBoundingClientRect();
                if (box.right > width + 1) out.push(`table ${{i}} ends at ${{box.right}} px > ${{width}} px`);
                if (table.scrollWidth > table.clientWidth + 1)
                    out.push(`table ${{i}} scrolls: ${{table.scrollWidth}} > ${{table.clientWidth}}`);
                for (const el of table.querySelectorAll("*")) {{
                    const r = el.getBoundingClientRect();
                    if (r.width && r.right > box.right + 1) {{
                        out.push(`table ${{i}}: ${{el.tagName}} "${{el.textContent.trim().slice(0, 40)}}" ends at ${{r.right}} px, the table at ${{box.right}} px`);
                        break;
                    }}
                }}
            }});
            return out;
        }})()"""
        return list(self.client.evaluate(script) or [])

    def screenshot(self, target: Path) -> None:
        """The whole page at the window's width, as PNG (the window made as tall as the page)."""
        height = int(self.client.evaluate("document.documentElement.scrollHeight") or HEIGHT)
        self._metrics(HEIGHT if height < HEIGHT else height)
        try:
            shot = self.client.send("Page.captureScreenshot", {"format": "png"})
        finally:
            self._metrics(HEIGHT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(shot["data"]))

    def _metrics(self, height: int) -> None:
        self.client.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def close(self) -> None:
        try:
            self.client.send("Browser.close", session=False)
        except Exception:  # already gone
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (base's name)
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The built site on a local HTTP server: ``http://127.0.0.1:PORT``."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(served: str) -> Iterator[Browser]:
    binary = find_chromium()
    if binary is None and os.environ.get("REPRO_REQUIRE_CHROMIUM") == "1":
        pytest.fail("REPRO_REQUIRE_CHROMIUM=1 (as in .ci/run) but no Chromium was found")
    if binary is None:
        pytest.skip(
            "no Chromium found (Debian's chromium package: apt-get install chromium; "
            ".ci/run installs it; REPRO_CHROMIUM names another binary)"
        )
    pytest.importorskip("websocket", reason="websocket-client (the dev extra) drives Chromium")
    with tempfile.TemporaryDirectory(prefix="repro-chromium-") as profile:
        opened = Browser(binary, served, Path(profile))
        try:
            yield opened
        finally:
            opened.close()


def screenshots_dir() -> Path:
    named = os.environ.get("REPRO_SCREENSHOTS")
    return Path(named) if named else REPO / "book" / "_build" / "screenshots"


NOT_PAGES = ("_static/", "_sources/", "_downloads/", "_images/")
"""Folders of the built site that hold assets, not pages (the theme's template fragments in
``_static`` are HTML files no link leads to)."""


def site_pages(site: Path) -> list[str]:
    """Every page of the built site, relative to its root."""
    found = (p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    return sorted(p for p in found if not p.startswith(NOT_PAGES))


def _anchors(page: Path) -> set[str]:
    text = page.read_text(errors="replace")
    return set(re.findall(r'\b(?:id|name)="([^"]+)"', text))


def broken_links(
    links: list[str], origin: str, site: Path, cache: dict[Path, set[str]]
) -> list[str]:
    """The links into the site whose file, or anchor on an HTML page, does not exist."""
    broken = []
    for link in links:
        if not link.startswith(origin + "/"):
            continue  # another host (not fetched by following it) or a javascript: link
        parts = urlsplit(link)
        path = site / unquote(parts.path).lstrip("/")
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            broken.append(link)
            continue
        if parts.fragment and path.suffix == ".html":
            anchors = cache.setdefault(path, _anchors(path))
            if unquote(parts.fragment) not in anchors:
                broken.append(link)
    return broken


def test_every_page_loads_offline_without_errors(site: Path, served: str, browser: Browser) -> None:
    pages = site_pages(site)
    assert "audit.html" in pages and "index.html" in pages
    problems: list[str] = []
    anchors: dict[Path, set[str]] = {}
    for page in pages:
        report = browser.open(f"{served}/{page}")
        report.links = broken_links(browser.links(), served, site, anchors)
        problems += report.problems()
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])


def test_audit_fits_a_laptop_screen_and_screenshots_are_saved(
    site: Path, served: str, browser: Browser
) -> None:
    shots = screenshots_dir()
    landing = browser.open(f"{served}/index.html")
    assert not landing.problems(), landing.problems()
    browser.screenshot(shots / "landing.png")
    audit = browser.open(f"{served}/audit.html")
    assert not audit.problems(), audit.problems()
    browser.screenshot(shots / "audit.png")
    overflow = browser.overflow("table.audit-table")
    assert not overflow, "\n".join(overflow)
    for name in ("landing.png", "audit.png"):
        assert (shots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_the_blocker_sees_a_request_to_another_host(
    tmp_path: Path, served: str, browser: Browser, site: Path
) -> None:
    """The test cannot pass by not looking: a page that asks another host is caught."""
    bad = site / "_probe_external.html"
    bad.write_text(
        '<html><body><img src="https://example.org/x.png">'
        '<a href="no-such-page.html">x</a><script>console.error("probe")</script></body></html>'
    )
    try:
        report = browser.open(f"{served}/_probe_external.html")
        report.links = broken_links(browser.links(), served, site, {})
    finally:
        bad.unlink()
    assert report.external == ["https://example.org/x.png"]
    assert any("probe" in line for line in report.console)
    assert report.images == ["https://example.org/x.png"]
    assert report.links == [f"{served}/no-such-page.html"]
