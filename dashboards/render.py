"""Render a parsed page: prose, inputs, and each component with its "How was this computed?".

The renderer knows nothing about any particular page. For each component it compiles the
component's query against the current filters and inputs, runs it (cached per snapshot), draws
the result and opens the trail expander with the exact SQL and parameters it ran. A query that
fails shows an error naming the page file, the query and its line, and the rest of the page
still renders. A page with ``refresh_seconds`` re-reads the snapshot and redraws itself on that
period (``st.fragment(run_every=…)``), so it follows a running stream without a reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from dashboards.components import draw
from dashboards.filters import Filters
from dashboards.pages_spec import (
    COMPONENTS,
    Component,
    Grid,
    Markdown,
    Page,
    PageError,
    select_options,
)
from dashboards.queries import CompiledQuery, compile_query, run_query
from dashboards.snapshot import SnapshotInfo, SnapshotMissing, snapshot_info
from dashboards.trail import TrailRequest, render_trail
from ingestion.config import Settings

TRAIL_LABEL = "How was this computed?"


@dataclass(frozen=True)
class Context:
    """What every component of a page run needs: where to read, and what is selected."""

    settings: Settings
    info: SnapshotInfo
    filters: Filters


def missing_snapshot(settings: Settings) -> None:
    """The friendly page shown when no snapshot has been published yet."""
    st.info("No data yet: no snapshot has been published, so there is nothing to show.")
    st.markdown(
        "Build one with **`make run`** (or **`contrail run`**): it generates surveys, loads "
        "them, builds the marts with dbt and publishes a read-only snapshot to "
        f"`{settings.serving_path}`. Reload this page once it has finished; the dashboards "
        "read the new snapshot on the next interaction."
    )


def input_key(page: Page, name: str) -> str:
    """The widget key of a page input (tests set inputs by this key)."""
    return f"input_{page.url_path}_{name}"


def _number_attrs(component: Component) -> tuple[dict[str, int | float], type]:
    """A NumberInput's default/min/max/step as numbers, and whether they are whole (int)."""
    numbers = {
        k: float(component.attrs[k])
        for k in ("default", "min", "max", "step")
        if k in component.attrs
    }
    cast: type = int if all(v.is_integer() for v in numbers.values()) else float
    return {k: cast(v) for k, v in numbers.items()}, cast


def input_default(component: Component) -> Any:
    """The value an input holds before the reader touches it."""
    attrs = component.attrs
    if component.kind == "TextInput":
        return attrs.get("default", "").strip()
    if component.kind == "NumberInput":
        numbers, cast = _number_attrs(component)
        return numbers.get("default", numbers.get("min", cast(0)))
    return attrs.get("default", select_options(component)[0][0])


def _render_input(page: Page, component: Component) -> Any:
    attrs = component.attrs
    key = input_key(page, attrs["name"])
    if component.kind == "TextInput":
        value = st.text_input(
            attrs["label"],
            value=attrs.get("default", ""),
            placeholder=attrs.get("placeholder"),
            help=attrs.get("help"),
            key=key,
        )
        return value.strip()
    if component.kind == "NumberInput":
        numbers, cast = _number_attrs(component)
        return st.number_input(
            attrs["label"],
            value=input_default(component),
            min_value=numbers.get("min"),
            max_value=numbers.get("max"),
            step=numbers.get("step", cast(1)),
            help=attrs.get("help"),
            key=key,
        )
    options = select_options(component)
    values = [value for value, _ in options]
    labels = dict(options)
    return st.selectbox(
        attrs["label"],
        values,
        index=values.index(input_default(component)),
        format_func=labels.get,
        help=attrs.get("help"),
        key=key,
    )


def _waiting(component: Component, inputs: Mapping[str, Any]) -> bool:
    """Whether ``component`` waits for an empty input (``when=``), e.g. a lookup not yet typed."""
    return "when" in component.attrs and inputs.get(component.attrs["when"]) in (None, "")


def page_queries(
    page: Page, filters: Filters, inputs: Mapping[str, Any] | None = None
) -> list[CompiledQuery]:
    """The queries a page runs for ``filters`` and ``inputs`` (defaults where not given), in
    page order: a component waiting for an empty input (``when=``) runs none."""
    values = {name: input_default(component) for name, component in page.inputs.items()}
    values.update(inputs or {})
    return [
        compile_query(page, component.data, filters, values)
        for component in page.components()
        if component.data is not None
        and not COMPONENTS[component.kind].is_input
        and not _waiting(component, values)
    ]


def _render_component(
    page: Page,
    component: Component,
    context: Context,
    inputs: dict[str, Any],
    defer_trail: bool = False,
) -> tuple[str, TrailRequest] | None:
    """Draw one component; its trail follows it, or is returned when ``defer_trail``.

    KPI tiles share a row of narrow columns, too narrow for the trail's SQL and tables, so
    their trails are drawn full width under the row (``render_blocks``).
    """
    if COMPONENTS[component.kind].is_input:
        inputs[component.attrs["name"]] = _render_input(page, component)
        return None
    assert component.data is not None  # the parser requires data on non-input components
    if _waiting(component, inputs):
        return None
    query = compile_query(page, component.data, context.filters, inputs)
    try:
        df = run_query(context.settings, context.info, query)
    except (duckdb.Error, SnapshotMissing, OSError) as error:
        line = page.queries[component.data].line
        st.error(
            f"**{component.title}**: {page.path.name}:{line}: query {component.data!r} "
            f"failed: {error}"
        )
    else:
        _draw_rows(page, component, df)
    if "caption" in component.attrs:
        st.caption(component.attrs["caption"])
    request = TrailRequest(
        title=component.title,
        sql=query.sql,
        params=query.params,
        filters=context.filters,
    )
    if defer_trail:
        return f"{TRAIL_LABEL} ({component.title})", request
    _render_trail(TRAIL_LABEL, request, context)
    return None


def _render_trail(label: str, request: TrailRequest, context: Context) -> None:
    with st.expander(label):
        render_trail(request, context.settings, context.info)


def _draw_rows(page: Page, component: Component, df: pd.DataFrame) -> None:
    if df.empty and component.kind != "BigValue":
        st.markdown(f"**{component.title}**")
        st.info(component.attrs.get("empty", "No rows match the current filters."))
        return
    try:
        draw(component, df, page.path)
    except PageError as error:
        st.error(str(error))
        return
    if df.empty and "empty" in component.attrs:
        st.caption(component.attrs["empty"])


def render_blocks(page: Page, context: Context) -> None:
    """Everything below the title, in file order."""
    inputs: dict[str, Any] = {}
    for block in page.blocks:
        if isinstance(block, Markdown):
            st.markdown(block.text)
        elif isinstance(block, Grid):
            children = list(block.children)
            for start in range(0, len(children), block.cols):
                columns = st.columns(block.cols, gap="medium")
                deferred = []
                for column, child in zip(
                    columns, children[start : start + block.cols], strict=False
                ):
                    with column:
                        if isinstance(child, Markdown):
                            st.markdown(child.text)
                            continue
                        trail = _render_component(
                            page, child, context, inputs, defer_trail=child.kind == "BigValue"
                        )
                        if trail is not None:
                            deferred.append(trail)
                for label, request in deferred:
                    _render_trail(label, request, context)
        else:
            _render_component(page, block, context, inputs)


def render_page(
    page: Page, settings: Settings, info: SnapshotInfo | None, filters: Filters
) -> None:
    """The body of one page; ``info`` is None when no snapshot exists."""
    st.title(page.title)
    if info is None:
        missing_snapshot(settings)
        return
    if page.refresh_seconds is None:
        render_blocks(page, Context(settings, info, filters))
        return

    @st.fragment(run_every=page.refresh_seconds)
    def live() -> None:
        # A fragment rerun does not rerun the app, so read which snapshot is current here.
        try:
            current = snapshot_info(settings)
        except SnapshotMissing:
            missing_snapshot(settings)
            return
        render_blocks(page, Context(settings, current, filters))
        st.caption(f"Refreshes every {page.refresh_seconds:g} s.")

    live()


def render_broken_page(error: PageError) -> None:
    """What a page file that cannot be parsed shows instead of its content."""
    st.title(error.path.stem.replace("_", " ").title())
    st.error(f"This page cannot be shown: {error}")
