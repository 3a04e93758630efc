"""The sidebar: the global filters every page applies, and which snapshot is on screen.

The widgets live in the app's entry point, so a choice stays as the reader moves between
pages. Their defaults select everything: an untouched sidebar gives ``Filters()``, and the
numbers equal the marts' overall figures. Choices come from the snapshot itself (cached per
``publish_id``), so a new travel class or airport appears as soon as it is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import streamlit as st

from dashboards.filters import Filters
from dashboards.queries import CompiledQuery, run_query
from dashboards.snapshot import SnapshotInfo
from ingestion.config import Settings

# Widget keys, also used by the tests to set filters.
KEYS = {
    "date_range": "filter_date_range",
    "travel_classes": "filter_travel_classes",
    "customer_types": "filter_customer_types",
    "travel_types": "filter_travel_types",
    "airports": "filter_airports",
    "routes": "filter_routes",
    "channels": "filter_channels",
}

_OPTIONS_SQL = """
select
    min(survey_date) as first_date,
    max(survey_date) as last_date,
    list(distinct travel_class order by travel_class)
        filter (where travel_class is not null) as travel_classes,
    list(distinct customer_type order by customer_type)
        filter (where customer_type is not null) as customer_types,
    list(distinct type_of_travel order by type_of_travel)
        filter (where type_of_travel is not null) as travel_types,
    list(distinct channel order by channel) filter (where channel is not null) as channels
from marts.fct_survey_responses
"""

_PLACES_SQL = """
with

flights as (
    select
        origin_airport,
        destination_airport,
        origin_airport || '-' || destination_airport as route
    from marts.dim_flight
    where origin_airport is not null and destination_airport is not null
)

select
    (select list(distinct route order by route) from flights) as routes,
    (
        select list(airport_code order by airport_code)
        from (
            select origin_airport as airport_code from flights
            union
            select destination_airport from flights
        ) as airports
    ) as airports
"""


# The queries behind the filter choices, run on every page.
OPTION_QUERIES = (
    CompiledQuery("filter_options", _OPTIONS_SQL),
    CompiledQuery("filter_places", _PLACES_SQL),
)


@dataclass(frozen=True)
class FilterOptions:
    """What the filter widgets offer, read from the snapshot."""

    first_date: date | None
    last_date: date | None
    travel_classes: list[str]
    customer_types: list[str]
    travel_types: list[str]
    channels: list[str]
    airports: list[str]
    routes: list[str]


def _as_date(value: Any) -> date | None:
    if value is None or value != value:  # None or NaT
        return None
    return value.date() if hasattr(value, "date") else value


def _as_list(value: Any) -> list[str]:
    return [] if value is None else [str(item) for item in value]


def filter_options(settings: Settings, info: SnapshotInfo) -> FilterOptions:
    """The values the filters can take in this snapshot."""
    surveys, places = (run_query(settings, info, query).iloc[0] for query in OPTION_QUERIES)
    return FilterOptions(
        first_date=_as_date(surveys["first_date"]),
        last_date=_as_date(surveys["last_date"]),
        travel_classes=_as_list(surveys["travel_classes"]),
        customer_types=_as_list(surveys["customer_types"]),
        travel_types=_as_list(surveys["travel_types"]),
        channels=_as_list(surveys["channels"]),
        airports=_as_list(places["airports"]),
        routes=_as_list(places["routes"]),
    )


def _reset(options: FilterOptions) -> None:
    """Put every filter widget back to its default, "everything".

    The widgets' values are set, not dropped: a dropped key would let the browser send its last
    choice back on the next rerun, and the filter would return on the next page.
    """
    for field, key in KEYS.items():
        if field == "date_range":
            if options.first_date is not None and options.last_date is not None:
                st.session_state[key] = (options.first_date, options.last_date)
        else:
            st.session_state[key] = []


def _date_range(options: FilterOptions) -> tuple[date | None, date | None]:
    """The chosen dates; the full range (the default) counts as no date filter."""
    if options.first_date is None or options.last_date is None:
        return None, None
    key = KEYS["date_range"]
    full = (options.first_date, options.last_date)
    # The default lives in session state (not ``value=``), so Reset can set it without a
    # warning; a choice outside a newly published snapshot's dates falls back to the full range.
    current = st.session_state.get(key)
    if not isinstance(current, (list, tuple)) or any(
        not (options.first_date <= day <= options.last_date) for day in current
    ):
        st.session_state[key] = full
    chosen = st.date_input(
        "Survey date",
        min_value=options.first_date,
        max_value=options.last_date,
        key=key,
        help="Day the survey was submitted (UTC).",
    )
    picked = list(chosen) if isinstance(chosen, (list, tuple)) else [chosen]
    start = picked[0] if picked else None
    end = picked[1] if len(picked) > 1 else None
    return (
        None if start is None or start <= options.first_date else start,
        None if end is None or end >= options.last_date else end,
    )


def render_filters(settings: Settings, info: SnapshotInfo) -> Filters:
    """Draw the filter widgets in the sidebar and return what they select."""
    options = filter_options(settings, info)
    with st.sidebar:
        st.header("Filters")
        date_from, date_to = _date_range(options)

        def choose(label: str, field: str, values: list[str], help: str | None = None) -> tuple:
            picked = st.multiselect(label, values, key=KEYS[field], placeholder="All", help=help)
            return tuple(picked)

        filters = Filters(
            date_from=date_from,
            date_to=date_to,
            travel_classes=choose("Travel class", "travel_classes", options.travel_classes),
            customer_types=choose("Customer type", "customer_types", options.customer_types),
            travel_types=choose("Type of travel", "travel_types", options.travel_types),
            airports=choose(
                "Airport",
                "airports",
                options.airports,
                help="Surveys whose flight left from or arrived at these airports.",
            ),
            routes=choose("Route", "routes", options.routes, help="Origin-destination."),
            channels=choose(
                "Channel",
                "channels",
                options.channels,
                help="batch: CSV exports; stream: surveys posted to the ingestion API.",
            ),
        )
        st.button("Reset filters", on_click=_reset, args=(options,), disabled=filters.is_default)
        st.caption(f"Showing {filters.describe()}.")
    return filters


def render_snapshot_caption(info: SnapshotInfo | None) -> None:
    """'Snapshot built at …' under the filters."""
    with st.sidebar:
        if info is None:
            st.caption("No snapshot published yet.")
        elif info.published_at is None:
            st.caption(f"Snapshot {info.publish_id} (build time not recorded).")
        else:
            st.caption(f"Snapshot built at {info.published_at:%Y-%m-%d %H:%M:%S} UTC.")
