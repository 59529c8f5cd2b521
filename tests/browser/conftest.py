"""Real Chromium (Debian's package, headless) driven by Playwright against pytest-django's live server,
plus a local stand-in for Mechanical Turk: it receives externalSubmit posts and serves parent pages
that frame our HIT page from an allowed and from a foreign origin."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

# Playwright's sync API keeps an event loop in the test thread; the ORM calls the tests make there are
# ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium chromium-driver")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        pytest.fail(f"axe-core is not installed at {AXE}: run `npm ci` (make test does it)")
    return AXE.read_text()


def accessibility_problems(page, axe_source: str) -> list[str]:
    """axe-core's violations above minor (moderate, serious, critical) on the page as it stands, one
    line each (rule, the elements, what to fix); injected through the debugging protocol, so the
    page's own CSP allows it."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source)
    return page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.filter(v => v.impact !== 'minor')
            .map(v => `${v.impact} ${v.id}: ${v.help} at `
                      + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '));
    }""")


def sign_in_as_reviewer(page, live_server) -> None:
    """A staff account in the "reviewer" and "paymaster" groups, its session put into the browser:
    every dashboard control is shown."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.create_user("reviewer", password="review-pw-1", is_staff=True)
    user.groups.add(*Group.objects.filter(name__in=["reviewer", "paymaster"]))
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "url": live_server.url,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
            }
        ]
    )


class FakeTurk:
    """What the tests need of MTurk's worker site: its externalSubmit endpoint and a framing page."""

    def __init__(self) -> None:
        self.posts: list[dict[str, list[str]]] = []
        turk = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, body: str) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                if urlsplit(self.path).path == "/mturk/externalSubmit":
                    turk.posts.append(parse_qs(self.rfile.read(length).decode()))
                self._send("<h1 id='turk-done'>HIT submitted to the fake MTurk</h1>")

            def do_GET(self) -> None:  # noqa: N802
                src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
                self._send(f"<h1>worker site</h1><iframe id='task' src='{src}' width='1200' height='800'></iframe>")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def foreign_origin(self) -> str:
        """The same server under another host name: another origin, which may not frame the HIT."""
        return f"http://localhost:{self.port}"


@pytest.fixture
def fake_turk(settings):
    turk = FakeTurk()
    settings.MTURK_EXTRA_SUBMIT_ORIGINS = [turk.origin]
    settings.MTURK_FRAME_ANCESTORS = [*settings.MTURK_FRAME_ANCESTORS, turk.origin]
    yield turk
    turk.server.shutdown()
