"""Drive the dashboards in headless Chromium: launch, stay on 127.0.0.1, wait, screenshot.

The browser test uses Debian's ``/usr/bin/chromium`` through Python Playwright (never a
downloaded browser). Streamlit draws a page in steps: the script runs and sends elements, then
Vega renders each chart on its own, so "the page is ready" means the script has stopped *and*
every chart has drawn its marks. The helpers here wait for exactly that and for nothing else.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, Route, WebSocket, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EXPECT_TIMEOUT_MS = 20_000
# The first page of a fresh server also loads the frontend bundle and warms every cache.
FIRST_LOAD_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 900}
MAX_SCREENSHOT_HEIGHT = 20_000  # pixels; a page taller than this is cut, not looped over

APP = '[data-testid="stApp"]'
ERRORS = (  # an exception box holds an error alert of its own: count the box once
    '[data-testid="stException"], '
    '[data-testid="stAlertContentError"]:not([data-testid="stException"] *)'
)
CHARTS = '[data-testid="stVegaLiteChart"]'
# Marks Vega draws for data (axes, legends and titles have other roles).
CHART_MARKS = 'svg g[class*="role-mark"] > *, canvas'
# The two regions Streamlit scrolls itself, so the window never grows past the viewport.
SCROLLERS = ("stMain", "stSidebarContent")


def require_chromium() -> Path:
    """Debian's chromium, or stop: fail in CI (the browser is part of the image), else skip."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: install Debian's chromium: sudo apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A port nothing listens on now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_loopback(url: str) -> bool:
    """Whether a request stays on this machine: data:/blob: URLs, or a loopback host."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class LoopbackGuard:
    """Aborts every request that would leave the machine and remembers its URL.

    The dashboards must work offline; a page that fetches a font, an icon or a script from
    the internet shows up here even though the abort keeps the test itself offline.
    """

    outside: list[str] = field(default_factory=list)

    def install(self, context: BrowserContext) -> None:
        context.route("**/*", self._route)
        context.on("page", lambda page: page.on("websocket", self._websocket))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if is_loopback(url):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _websocket(self, websocket: WebSocket) -> None:
        # context.route sees HTTP only; a socket to elsewhere is recorded (it cannot be aborted).
        if not is_loopback(websocket.url):
            self.outside.append(websocket.url)

    def forget(self) -> None:
        """Start a new check (each test answers for the requests made while it ran)."""
        self.outside.clear()

    def check(self) -> None:
        assert self.outside == [], (
            "the dashboards tried to reach outside 127.0.0.1 (requests aborted): "
            + ", ".join(sorted(set(self.outside)))
        )


def outside_expanders(page: Page, selector: str) -> list[str]:
    """Inner texts of the main area's elements matching ``selector`` that are not in a trail.

    The "How was this computed?" expanders hold notes, tables and alerts of their own; the
    page's content is what lies outside them.
    """
    return page.evaluate(
        """(selector) => Array.from(
            document.querySelectorAll('[data-testid="stMain"] ' + selector)
        ).filter((e) => !e.closest('[data-testid="stExpander"]')).map((e) => e.innerText.trim())""",
        selector,
    )


def wait_until_idle(page: Page, timeout: float = EXPECT_TIMEOUT_MS) -> None:
    """Wait until the script has finished its run, and every element and chart has drawn.

    The script state turns "notRunning" while elements whose code is still loading show as
    grey skeletons (seconds on a first visit), so the skeletons must be gone too.
    """
    expect(page.locator(APP)).to_have_attribute(
        "data-test-script-state", "notRunning", timeout=timeout
    )
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)
    charts = page.locator(CHARTS)
    for index in range(charts.count()):
        chart = charts.nth(index)
        expect(chart.locator(CHART_MARKS).first, f"chart {index + 1} drew nothing").to_be_attached(
            timeout=timeout
        )


def error_texts(page: Page) -> list[str]:
    """Streamlit exception boxes and st.error messages anywhere on the page."""
    return [text.strip() for text in page.locator(ERRORS).all_inner_texts()]


def metric(page: Page, title: str) -> Locator:
    """The value of the KPI tile titled ``title``."""
    label = page.get_by_test_id("stMetricLabel").get_by_text(title, exact=True)
    return page.get_by_test_id("stMetric").filter(has=label).get_by_test_id("stMetricValue")


def _content_height(page: Page) -> int:
    return int(
        page.evaluate(
            """(ids) => Math.max(document.documentElement.scrollHeight, ...ids.map((id) => {
                const e = document.querySelector(`[data-testid="${id}"]`);
                return e ? e.scrollHeight : 0;
            }))""",
            list(SCROLLERS),
        )
    )


def _next_frames(page: Page) -> None:
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


def full_page_screenshot(page: Page, path: Path) -> None:
    """Save the whole page, not only the viewport.

    Streamlit scrolls the main area and the sidebar inside the window, so Playwright's
    ``full_page`` alone stops at the viewport: the viewport is made as tall as the content for
    the shot, then restored.
    """
    original = page.viewport_size or VIEWPORT
    height = original["height"]
    for _ in range(3):  # the content can grow once the taller layout settles
        wanted = min(max(_content_height(page), original["height"]), MAX_SCREENSHOT_HEIGHT)
        if wanted == height:
            break
        height = wanted
        page.set_viewport_size({"width": original["width"], "height": height})
        _next_frames(page)
    wait_until_idle(page)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(original)
