"""Browser fixtures: Debian's Chromium driven by Playwright against the app under gunicorn.

Chromium is the one named by CHROMIUM, else the `chromium` on PATH; Playwright never downloads
a browser of its own. Without Chromium (or Playwright) the browser tests skip, saying why; under
CI=true, a CHROMIUM that is set but cannot be launched fails the run, and so does a missing axe-core.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest
import requests

from ..conftest import service_missing
from ..servers import REPO_ROOT, UNLIMITED, running_server, settled_totals

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
AXE_SCRIPT = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
# Without the networking switches Chromium keeps calling home on a network that is closed to it.
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_emails = itertools.count(1)


def unique_email(label: str = "browser") -> str:
    return f"{label}{next(_emails)}-{os.getpid()}@example.org"


def _unavailable(message: str) -> NoReturn:
    """Named by CHROMIUM, Chromium must work (under CI, failing if not); merely found on PATH, it may skip."""
    if os.environ.get("CHROMIUM"):
        service_missing(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    asked = os.environ.get("CHROMIUM", "").strip()
    path = asked or shutil.which("chromium")
    if not path:
        pytest.skip(
            "browser tests need Chromium: set CHROMIUM or put `chromium` on PATH (apt-get install chromium)"
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        _unavailable(f"CHROMIUM={path!r} is not an executable file")
    return path


@pytest.fixture(scope="session")
def playwright(chromium_path: str) -> Iterator[Playwright]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        _unavailable(f"browser tests need Playwright (pip install -r requirements-dev.txt): {error}")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_path: str) -> Iterator[Browser]:
    try:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
    except Exception as error:  # noqa: BLE001 - whatever stops Chromium from starting, say what it was
        _unavailable(f"Chromium at {chromium_path} did not start: {str(error).splitlines()[0]}")
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One gunicorn for the whole browser suite, on a fresh SQLite database seeded as `make run` does.

    Tests share it, so each pledges with an email of its own and compares counts before and after.
    It asks for the browser first so that, without Chromium, no server is started just to be skipped.
    """
    tmp_path = tmp_path_factory.mktemp("browser-server")
    database_url = f"sqlite:///{tmp_path / 'porchlight.db'}"
    # Names show at once: these tests are about the pages; tests/test_business_names.py covers approval.
    env = {"PLEDGE_RATE_LIMIT": UNLIMITED, "BUSINESS_NAMES": "immediate"}
    with running_server(database_url, tmp_path, workers=2, extra_env=env) as url:
        yield url


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        service_missing(f"the accessibility tests need axe-core at {AXE_SCRIPT}: run `npm install`")
    return AXE_SCRIPT.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def new_context(browser: Browser, server: str) -> Iterator[Callable[..., BrowserContext]]:
    """A factory of fresh browser contexts (own cookies, own language) on the test server."""
    contexts: list[BrowserContext] = []

    def make(
        *,
        javascript: bool = True,
        viewport: dict[str, int] = DESKTOP,
        base_url: str | None = None,
        **options: Any,
    ) -> BrowserContext:
        context = browser.new_context(
            base_url=base_url or server, java_script_enabled=javascript, viewport=viewport, **options
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


class FlakyLink:
    """A TCP relay in front of the test server that a test can cut, as a dropped Wi-Fi link would be.

    `cut()` ends every connection through it at once and refuses new ones (accepted, then closed
    unanswered) until `restore()`; `refused` counts those, so a test can wait for a retry to fail.
    """

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.refused = 0
        self._refusal = threading.Condition()
        threading.Thread(target=self._accept, name="flaky-link", daemon=True).start()

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            dropped, self._open = self._open, set()
        for sock in dropped:
            self._end(sock)

    def restore(self) -> None:
        self._up.set()

    def wait_for_refusals(self, count: int, timeout: float) -> bool:
        """Whether `count` connections have been refused since the link was made, within `timeout` s."""
        with self._refusal:
            return self._refusal.wait_for(lambda: self.refused >= count, timeout)

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            if not self._up.is_set():
                self._end(client)
                with self._refusal:
                    self.refused += 1
                    self._refusal.notify_all()
                continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                self._end(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # cut, or the other side went away
        finally:
            with self._lock:
                self._open.difference_update((source, sink))
            self._end(source)
            self._end(sink)

    @staticmethod
    def _end(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # already closed by the other side
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


@pytest.fixture
def flaky_link(server: str) -> Iterator[FlakyLink]:
    """The test server behind a link the test can cut and restore; browse it at `flaky_link.url`."""
    link = FlakyLink(server)
    yield link
    link.close()


@pytest.fixture
def page(new_context: Callable[..., BrowserContext]) -> Page:
    """A desktop page with JavaScript on."""
    return new_context().new_page()


@pytest.fixture(params=[True, False], ids=["js-on", "js-off"])
def javascript(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture
def any_page(javascript: bool, new_context: Callable[..., BrowserContext]) -> Page:
    """The same test with JavaScript on, then off: off, everything must still work."""
    return new_context(javascript=javascript).new_page()


# Helpers the browser tests share. Fields are found by the names the contract fixes, not by their
# labels, so that the same steps work in English and in Spanish.

PLEDGES_API = "/api/v1/campaigns/current/pledges"


def api_totals(server: str) -> dict[str, Any]:
    """The totals once every pledge made so far shows on every worker (see settled_totals)."""
    return settled_totals(server)


def neighborhood_count(server: str, slug: str) -> int:
    return next(row["total"] for row in api_totals(server)["neighborhoods"] if row["slug"] == slug)


def pledge_through_api(server: str, **fields: Any) -> dict[str, Any]:
    body = {"kind": "resident", "neighborhood": "allentown", "email": unique_email("api"), **fields}
    response = requests.post(server + PLEDGES_API, json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def fill_pledge(
    page: Page,
    *,
    kind: str = "resident",
    neighborhood: str = "allentown",
    email: str | None = None,
    name: str | None = None,
    show_name: bool = False,
) -> str:
    """Fill the pledge form as a mouse user would; returns the email used."""
    email = unique_email() if email is None else email
    page.check(f"input[name=kind][value={kind}]")
    page.select_option("select[name=neighborhood]", neighborhood)
    if name is not None:
        page.fill("input[name=name]", name)
    page.fill("input[name=email]", email)
    page.set_checked("input[name=show_name]", show_name)
    return email


def submit_pledge(page: Page) -> None:
    """Press the form's button and wait for the page the server answers with (thanks, or errors)."""
    with page.expect_navigation():
        page.click("form.pledge-form button[type=submit]")


def focused(page: Page) -> dict[str, str]:
    """What has the focus, and whether it shows (an outline or a box-shadow)."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const style = getComputedStyle(el);
            return {
                tag: el.tagName.toLowerCase(), id: el.id, name: el.getAttribute('name') || '',
                type: el.getAttribute('type') || '', value: el.value === undefined ? '' : String(el.value),
                classes: el.className || '',
                outline: style.outlineStyle === 'none' || style.outlineWidth === '0px'
                    ? '' : style.outlineStyle,
                shadow: style.boxShadow === 'none' ? '' : style.boxShadow,
            };
        }"""
    )


def sideways_overflow(page: Page) -> int:
    """How many pixels the page is wider than the window (0: nothing scrolls sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def axe_violations(page: Page, axe_source: str) -> list[str]:
    """axe-core's WCAG 2.1 A and AA violations on the page, one readable line per rule.

    axe is evaluated through the DevTools protocol (page.evaluate), which the page's
    Content-Security-Policy does not govern, so the page is tested with its real CSP on;
    a <script> tag added to the page would be refused by that very policy. axe waits on
    timers, so it needs a context with JavaScript on.
    """
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    result = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return {
                passed: result.passes.length,
                violations: result.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    targets: v.nodes.map(n => n.target.join(' ')),
                })),
            };
        }""",
        AXE_TAGS,
    )
    # A run that checked next to nothing (a misspelt tag, say) must not read as a clean bill.
    assert result["passed"] >= 10, f"axe passed only {result['passed']} rules: did it run at all?"
    violations = result["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} — {', '.join(v['targets'])}" for v in violations]
