"""The Contrail dashboards' navigation: ``dashboards/entry/app.py`` calls :func:`main`.

Each page is a Markdown file in ``dashboards/pages/`` (see ``dashboards/README.md``); this
entry point only wires them into a multipage app. On every rerun it reads which snapshot is
published (once), draws the global filters in the sidebar, and hands the chosen page the
snapshot and the filters. With no snapshot yet, every page explains how to build one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import streamlit as st

from dashboards.filters import Filters
from dashboards.pages_spec import Page, PageError, load_pages
from dashboards.render import render_broken_page, render_page
from dashboards.sidebar import render_filters, render_snapshot_caption
from dashboards.snapshot import SnapshotInfo, SnapshotMissing, snapshot_info
from ingestion.config import Settings

# The entry script is in dashboards/entry/, not beside this folder: Streamlit takes a pages/
# folder beside its entry script for a legacy multipage app of .py files.
PAGES_DIR = Path(__file__).with_name("pages")


def _page_callable(
    page: Page, settings: Settings, info: SnapshotInfo | None, filters: Filters
) -> Callable[[], None]:
    def show() -> None:
        render_page(page, settings, info, filters)

    show.__name__ = page.url_path.replace("-", "_")
    return show


def _broken_callable(error: PageError) -> Callable[[], None]:
    def show() -> None:
        render_broken_page(error)

    return show


def _navigation_pages(
    pages: list[Page],
    errors: list[PageError],
    settings: Settings,
    info: SnapshotInfo | None,
    filters: Filters,
) -> list[st.Page]:
    """One entry per page, in menu order; the first is Streamlit's default page, at ``/``.

    Streamlit serves its default page at the root URL only, so a hidden alias keeps
    ``/<url_path>`` (the URL its dbt exposure declares) working for that page too.
    """
    entries = []
    for index, page in enumerate(pages):
        show = _page_callable(page, settings, info, filters)
        if index == 0:
            entries.append(st.Page(show, title=page.title, url_path="", default=True))
            entries.append(
                st.Page(show, title=page.title, url_path=page.url_path, visibility="hidden")
            )
        else:
            entries.append(st.Page(show, title=page.title, url_path=page.url_path))
    entries += [
        st.Page(
            _broken_callable(error),
            title=f"{error.path.name} (broken)",
            url_path=f"broken-{error.path.stem.replace('_', '-').lower()}",
            default=not pages and index == 0,
        )
        for index, error in enumerate(errors)
    ]
    return entries


def main(only: str | None = None) -> None:
    """The app. ``only``: the ``url_path`` of one page to draw without the menu (the benchmark)."""
    st.set_page_config(page_title="Contrail", layout="wide")
    settings = Settings.from_env()
    pages, errors = load_pages(PAGES_DIR)
    try:
        info: SnapshotInfo | None = snapshot_info(settings)
    except SnapshotMissing:
        info = None
    filters = Filters()
    if info is not None:
        try:
            filters = render_filters(settings, info)
        except duckdb.Error as error:
            st.sidebar.error(f"Cannot read the filter choices from {info.path}: {error}")
    render_snapshot_caption(info)
    if only is not None:
        page = next((page for page in pages if page.url_path == only), None)
        if page is None:
            st.error(f"No dashboard page is served at /{only}.")
            return
        render_page(page, settings, info, filters)
        return
    if not pages and not errors:
        st.error(f"No dashboard pages found in {PAGES_DIR} (add a .md page there).")
        return
    st.navigation(_navigation_pages(pages, errors, settings, info, filters)).run()
