"""The dashboards in a real browser: headless Debian Chromium against `contrail dashboard`.

One server and one browser for the module, over the snapshot the real pipeline published.
Every page file the app serves (``dashboards.navigation.PAGES_DIR``, read with the page parser) is
opened and must show its KPIs, charts and tables without an error; a sidebar filter must change
a KPI to a count computed here with DuckDB; a "How was this computed?" expander must show the
SQL and the model it reads. Nothing may be fetched from outside 127.0.0.1. Full-page
screenshots go to ``tests/artifacts/`` for a reader to look at (the folder is git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import duckdb
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dashboards.navigation import PAGES_DIR
from dashboards.pages_spec import Page as DashboardPage
from dashboards.pages_spec import load_pages
from dashboards.serve import running_dashboard
from ingestion.config import REPO_ROOT, Settings
from tests.dashboards.browser import (
    CHARTS,
    CHROMIUM_ARGS,
    EXPECT_TIMEOUT_MS,
    FIRST_LOAD_TIMEOUT_MS,
    VIEWPORT,
    LoopbackGuard,
    error_texts,
    free_port,
    full_page_screenshot,
    metric,
    outside_expanders,
    require_chromium,
    wait_until_idle,
)

ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
CHART_KINDS = {"BarChart", "LineChart", "Heatmap", "ScatterPlot"}
DEFAULT_EMPTY = "No rows match the current filters."
TRAIL_LABEL = "How was this computed?"
FILTER_LABEL = "Travel class"
FILTER_VALUE = "business"  # as stored in the mart, and as the sidebar offers it


@dataclass
class Session:
    """The browser tab on the running dashboards, and the guard that keeps it offline."""

    base_url: str
    tab: Page
    guard: LoopbackGuard
    pages: list[DashboardPage]
    first_load_dialogs: list[str]  # dialogs the first page load showed (then dismissed)


def _dashboard_pages() -> list[DashboardPage]:
    pages, errors = load_pages(PAGES_DIR)
    assert errors == [], f"page files that do not parse: {[str(e) for e in errors]}"
    assert pages, f"no dashboard pages in {PAGES_DIR}"
    return pages


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def session(browser: Browser, published_settings: Settings) -> Iterator[Session]:
    """One tab on a server started for this module, first opened at the first page's URL."""
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    pages = _dashboard_pages()
    with running_dashboard(published_settings, host="127.0.0.1", port=free_port()) as url:
        context = browser.new_context(viewport=VIEWPORT)
        guard = LoopbackGuard()
        guard.install(context)
        tab = context.new_page()
        tab.goto(url + pages[0].url_path)
        expect(tab.get_by_role("heading", name=pages[0].title, level=1)).to_be_visible(
            timeout=FIRST_LOAD_TIMEOUT_MS
        )
        wait_until_idle(tab, timeout=FIRST_LOAD_TIMEOUT_MS)
        dialogs = [text.strip() for text in tab.get_by_test_id("stDialog").all_inner_texts()]
        if dialogs:  # recorded for the first test; closed so the other tests can click
            tab.keyboard.press("Escape")
            expect(tab.get_by_test_id("stDialog")).to_have_count(0)
        try:
            yield Session(url, tab, guard, pages, dialogs)
        finally:
            context.close()


def _scalar(settings: Settings, sql: str) -> int:
    conn = duckdb.connect(str(settings.serving_path), read_only=True)
    try:
        row = conn.execute(sql).fetchone()
    finally:
        conn.close()
    assert row is not None
    return int(row[0])


def _open(session: Session, page: DashboardPage) -> None:
    """Go to ``page`` through the sidebar navigation and wait until it has drawn."""
    tab = session.tab
    link = tab.get_by_test_id("stSidebarNav").get_by_role("link", name=page.title, exact=True)
    link.click()
    expect(tab.get_by_role("heading", name=page.title, level=1)).to_be_visible()
    expect(tab).to_have_url(session.base_url + ("" if page is session.pages[0] else page.url_path))
    wait_until_idle(tab)


def _plain(markdown: str) -> str:
    """An empty-state message as the browser shows it (Markdown marks gone)."""
    return markdown.replace("`", "").replace("**", "")


def _content_problems(tab: Page, page: DashboardPage) -> list[str]:
    """What is missing: every KPI tile, chart and table of the page file, or its empty note."""
    problems = [f"error on screen: {text}" for text in error_texts(tab)]
    # Inputs are empty on a first visit, so components drawn only once an input has a value
    # (`when=`) are not expected yet.
    components = [c for c in page.components() if "when" not in c.attrs]
    tiles = [c for c in components if c.kind == "BigValue"]
    shown = outside_expanders(tab, '[data-testid="stMetricValue"]')
    if len(shown) != len(tiles) or not all(shown):
        problems.append(f"{len(tiles)} KPI tiles in the file; on screen: {shown}")

    displays = [c for c in components if c.kind in CHART_KINDS or c.kind == "DataTable"]
    notes = {_plain(c.attrs.get("empty", DEFAULT_EMPTY)) for c in displays}
    empty = [t for t in outside_expanders(tab, '[data-testid="stAlertContentInfo"]') if t in notes]
    charts = outside_expanders(tab, CHARTS)
    tables = outside_expanders(tab, '[data-testid="stDataFrame"]')
    if len(charts) + len(tables) + len(empty) != len(displays):
        problems.append(
            f"{len(displays)} charts and tables in the file; on screen {len(charts)} charts, "
            f"{len(tables)} tables and {len(empty)} empty notes"
        )
    return problems


def test_every_page_renders_without_errors(session: Session) -> None:
    """Each page, in menu order: content drawn, no error, a full-page screenshot."""
    tab = session.tab
    first = session.pages[0]
    problems: dict[str, list[str]] = {}
    if session.first_load_dialogs:
        problems[f"/{first.url_path} (first visit)"] = session.first_load_dialogs
    hrefs = (
        tab.get_by_test_id("stSidebarNav")
        .get_by_role("link")
        .evaluate_all("(links) => links.map((link) => link.href)")
    )
    expected = [session.base_url] + [session.base_url + p.url_path for p in session.pages[1:]]
    if hrefs != expected:
        problems["sidebar"] = [f"links {hrefs}, expected {expected}"]

    for index, page in enumerate(session.pages):
        if index:
            _open(session, page)
        found = _content_problems(tab, page)
        if found:
            problems[page.path.name] = found
        full_page_screenshot(tab, ARTIFACTS / f"{page.order}-{page.url_path}.png")
    assert problems == {}, f"pages with problems: {problems}"
    session.guard.check()


def test_travel_class_filter_changes_the_responses_kpi(
    session: Session, published_settings: Settings
) -> None:
    tab = session.tab
    session.guard.forget()
    overview = session.pages[0]
    tile = next(
        c for c in overview.components() if c.kind == "BigValue" and c.attrs["value"] == "responses"
    )
    total = _scalar(published_settings, "select count(*) from marts.fct_survey_responses")
    chosen = _scalar(
        published_settings,
        f"select count(*) from marts.fct_survey_responses where travel_class = '{FILTER_VALUE}'",
    )
    assert 0 < chosen < total, "the snapshot needs surveys in and out of the chosen class"

    _open(session, overview)
    value = metric(tab, tile.title)
    expect(value).to_have_text(f"{total:,}")

    sidebar = tab.get_by_test_id("stSidebar")
    picker = sidebar.get_by_test_id("stMultiSelect").filter(has_text=FILTER_LABEL)
    picker.locator("input").click()
    tab.get_by_role("option", name=FILTER_VALUE, exact=True).click()
    tab.keyboard.press("Escape")
    chosen_tags = picker.locator("[data-tag]")
    expect(chosen_tags).to_have_text([FILTER_VALUE])
    expect(value).to_have_text(f"{chosen:,}")
    wait_until_idle(tab)
    assert error_texts(tab) == []

    sidebar.get_by_role("button", name="Reset filters").click()
    expect(value).to_have_text(f"{total:,}")
    wait_until_idle(tab)
    expect(chosen_tags, "Reset filters left the class chosen in the sidebar").to_have_count(0)
    # Moving between pages reruns the app: the cleared choice must not come back.
    _open(session, session.pages[1])
    _open(session, overview)
    expect(value).to_have_text(f"{total:,}")
    session.guard.check()


def test_trail_shows_the_sql_and_the_model(session: Session) -> None:
    tab = session.tab
    session.guard.forget()
    overview = session.pages[0]
    _open(session, overview)
    tile = next(c for c in overview.components() if c.kind == "BigValue")
    expect(tab.get_by_test_id("stMetricLabel").get_by_text(tile.title, exact=True)).to_be_visible()
    # A KPI's trail is drawn full width under its row of tiles, named after the tile.
    label = f"{TRAIL_LABEL} ({tile.title})"
    expander = tab.get_by_test_id("stExpander").filter(has_text=label)
    expander.get_by_text(label, exact=True).click()
    details = expander.get_by_test_id("stExpanderDetails")
    expect(details).to_be_visible()

    sql = details.get_by_test_id("stCode").first
    expect(sql).to_contain_text("select")
    expect(sql).to_contain_text("marts.fct_survey_responses")

    details.get_by_role("tab", name="Lineage").click()
    lineage = details.get_by_role("tabpanel").filter(visible=True)
    expect(lineage).to_contain_text("marts.fct_survey_responses")
    expect(lineage).to_contain_text("(model")
    details.get_by_role("tab", name="SQL").click()
    expect(sql).to_be_visible()
    wait_until_idle(tab)
    assert error_texts(tab) == []
    full_page_screenshot(tab, ARTIFACTS / f"{overview.order}-{overview.url_path}-trail.png")
    session.guard.check()
