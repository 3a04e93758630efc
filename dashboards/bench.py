"""Benchmark the dashboards: how long each page takes to render at a given number of surveys.

Each page is rendered the way the app renders it (sidebar filters, then the page with every
chart and trail) with ``streamlit.testing``'s ``AppTest``, first view, caches cleared, so the
figure is the server-side work of a reader opening the page. The baseline, measured in the same
run on the same snapshot, is the page's queries alone: the SQL its components and the sidebar run,
executed directly on a read-only connection. The difference is what drawing and the trails cost.

The snapshot is built by the real pipeline (generate, load, dbt build, publish) in a scratch
folder under the data directory, and removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rich.table import Table
from streamlit import config
from streamlit.logger import set_log_level

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.progress import Reporter, SilentReporter

if TYPE_CHECKING:
    from dashboards.pages_spec import Page
    from dashboards.queries import CompiledQuery

TARGET_S = 2.0  # a page renders in under 2 s
TARGET_ROWS = 1_000_000  # … at one million surveys
REPEATS = 3  # each measure is the median of this many cold renders
RENDER_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class PageTiming:
    """One page's cold render against its queries alone (medians of ``REPEATS``)."""

    view: str  # "Overview", or "Flight lookup (search)" for a page after an input
    render_s: float
    queries_s: float
    queries: int

    @property
    def met(self) -> bool:
        return self.render_s < TARGET_S


@dataclass(frozen=True)
class DashboardFigures:
    rows: int  # surveys in the snapshot the pages read (counted there, not the number asked for)
    build_s: float
    pages: tuple[PageTiming, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "build_s": self.build_s,
            "page_render_s_max": max(page.render_s for page in self.pages),
            "pages": {
                page.view: {
                    "render_s": page.render_s,
                    "queries_s": page.queries_s,
                    "queries": page.queries,
                }
                for page in self.pages
            },
        }

    def checks(self) -> list[tuple[str, str, str, bool]]:
        """(measure, measured, target, met) rows; below ``TARGET_ROWS`` the target is not judged."""
        judged = self.rows >= TARGET_ROWS
        target = f"< {TARGET_S:g} s" if judged else f"< {TARGET_S:g} s at {TARGET_ROWS:,}"
        return [
            (
                page.view,
                f"{page.render_s:.2f} s (queries alone {page.queries_s:.2f} s, {page.queries})",
                target,
                page.met or not judged,
            )
            for page in self.pages
        ]

    def table(self) -> Table:
        table = Table(
            title=f"Contrail dashboard pages, first view ({self.rows:,} surveys)",
            caption=f"snapshot built in {self.build_s:.1f} s; medians of {REPEATS} cold renders; "
            "baseline: the same queries run directly, in the same run",
        )
        for column in ("Page", "Render", "Queries alone", "Queries", "Target", "Met"):
            table.add_column(column, justify="left" if column == "Page" else "right")
        judged = self.rows >= TARGET_ROWS
        for page, (*_, target, met) in zip(self.pages, self.checks(), strict=True):
            table.add_row(
                page.view,
                f"{page.render_s:.2f} s",
                f"{page.queries_s:.2f} s",
                str(page.queries),
                target,
                ("[green]yes[/]" if met else "[red]no[/]") if judged else "not judged",
            )
        return table


def _one_page(url_path: str) -> None:
    """The app drawing one page without its menu (``AppTest.from_function`` runs this source)."""
    from dashboards.navigation import main

    main(only=url_path)


@contextmanager
def _data_dir(settings: Settings) -> Iterator[None]:
    """``CONTRAIL_DATA_DIR`` pointing at ``settings.data_dir`` for the duration."""
    before = os.environ.get("CONTRAIL_DATA_DIR")
    os.environ["CONTRAIL_DATA_DIR"] = str(settings.data_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CONTRAIL_DATA_DIR", None)
        else:
            os.environ["CONTRAIL_DATA_DIR"] = before


def _render(page: Page, inputs: dict[str, Any] | None = None) -> float:
    """Seconds of one cold render of a page: Streamlit's and the trails' caches cleared.

    With ``inputs``, the page is opened, the inputs typed, and the rerun that follows is timed:
    what a reader waits for after a search.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboards.render import input_key
    from dashboards.trail import clear_caches

    st.cache_data.clear()
    clear_caches()
    at = AppTest.from_function(_one_page, args=(page.url_path,), default_timeout=RENDER_TIMEOUT_S)
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    _raise_on_errors(at, page.url_path)
    if inputs:
        for name, value in inputs.items():
            at.text_input(key=input_key(page, name)).set_value(value)
        started = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - started
        _raise_on_errors(at, page.url_path)
    return seconds


def _median(measure: Callable[[], float], repeats: int) -> float:
    return statistics.median(measure() for _ in range(repeats))


def _raise_on_errors(at: Any, url_path: str) -> None:
    problems = [e.value for e in at.exception] + [e.value for e in at.error]
    if problems:
        raise ContrailError(f"dashboard page {url_path!r} failed to render: {problems[0]}")


def _time_view(
    settings: Settings,
    page: Page,
    view: str,
    inputs: dict[str, Any] | None,
    repeats: int,
) -> PageTiming:
    from dashboards.filters import Filters
    from dashboards.queries import execute
    from dashboards.render import page_queries
    from dashboards.sidebar import OPTION_QUERIES
    from dashboards.snapshot import snapshot_info

    info = snapshot_info(settings)
    # The renderer's cache runs a query shared by several components once, so the baseline does.
    if inputs:  # the rerun after typing finds the sidebar's and the first view's results cached
        first_view = page_queries(page, Filters())
        queries = _distinct(q for q in page_queries(page, Filters(), inputs) if q not in first_view)
    else:
        queries = _distinct([*OPTION_QUERIES, *page_queries(page, Filters())])

    def run_queries() -> float:
        started = time.perf_counter()
        for query in queries:
            execute(settings, info, query)
        return time.perf_counter() - started

    render_s = _median(lambda: _render(page, inputs), repeats)
    return PageTiming(
        view=view,
        render_s=round(render_s, 3),
        queries_s=round(_median(run_queries, repeats), 3),
        queries=len(queries),
    )


def _distinct(queries: Iterable[CompiledQuery]) -> list[CompiledQuery]:
    distinct: list[CompiledQuery] = []
    for query in queries:
        if query not in distinct:
            distinct.append(query)
    return distinct


def _snapshot_facts(settings: Settings) -> tuple[int, str]:
    """The surveys the published snapshot holds, and its busiest flight (to look up)."""
    from dashboards.snapshot import query, snapshot_info

    facts = query(
        snapshot_info(settings).path,
        "select (select count(*) from marts.fct_survey_responses) as surveys, ("
        "select flight_id from marts.fct_survey_responses where flight_id is not null "
        "group by flight_id order by count(*) desc, flight_id limit 1) as flight_id",
    ).iloc[0]
    if facts["flight_id"] is None:
        raise ContrailError("the benchmark snapshot holds no flight to look up")
    return int(facts["surveys"]), str(facts["flight_id"])


def run_dashboard_benchmarks(
    settings: Settings,
    *,
    rows: int = TARGET_ROWS,
    seed: int = 42,
    repeats: int = REPEATS,
    reporter: Reporter | None = None,
) -> DashboardFigures:
    """Build a snapshot of ``rows`` surveys in a scratch folder and time every page on it."""
    # Streamlit's cache and script context warn when used outside a server; quiet them.
    config.set_option("logger.level", "error")
    set_log_level("error")
    from dashboards.navigation import PAGES_DIR
    from dashboards.pages_spec import load_pages
    from ingestion.pipeline import run_pipeline

    reporter = reporter or SilentReporter()
    pages, errors = load_pages(PAGES_DIR)
    if errors:
        raise ContrailError(f"a dashboard page cannot be parsed: {errors[0]}")
    scratch = settings.data_dir / "bench-dashboards"
    shutil.rmtree(scratch, ignore_errors=True)
    bench_settings = replace(settings, data_dir=scratch)
    try:
        started = time.perf_counter()
        run_pipeline(bench_settings, rows=rows, seed=seed, reporter=reporter)
        build_s = time.perf_counter() - started
        surveys, flight = _snapshot_facts(bench_settings)
        views: list[tuple[Page, str, dict[str, Any] | None]] = [
            (page, page.title, None) for page in pages
        ]
        views += [
            (page, f"{page.title} (search)", {name: flight})
            for page in pages
            for name, component in page.inputs.items()
            if component.kind == "TextInput"
        ]
        timings = []
        with _data_dir(bench_settings), reporter.step("render pages", len(views), "pages") as done:
            _render(pages[0])  # imports and first-use set-up: not timed
            for page, view, inputs in views:
                timings.append(_time_view(bench_settings, page, view, inputs, repeats))
                done(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return DashboardFigures(rows=surveys, build_s=round(build_s, 1), pages=tuple(timings))
