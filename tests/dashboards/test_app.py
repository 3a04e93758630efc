"""The dashboards app through ``streamlit.testing``: every figure equals SQL written here.

The expected values are computed in this file, with SQL against the published snapshot (or
pandas on rows read from it), never read back from the app's own queries. Pages are reached by
their URL path (see ``go``), widgets by key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.util import calc_hash

from ingestion.config import Settings

pytestmark = pytest.mark.slow  # the session snapshot is built with dbt

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboards" / "entry" / "app.py"
PAGES = REPO / "dashboards" / "pages"
TRAIL = "How was this computed?"
PAGE_TITLES = {
    "overview": "Overview",
    "service-drivers": "Service drivers",
    "delays": "Delays",
    "routes": "Routes",
    "flight-lookup": "Flight lookup",
    "live": "Live",
    "pipeline-health": "Pipeline health",
}
ACTIONS = {  # mart_service_drivers.quadrant -> what the page tells the reader to do
    "concentrate here": "Fix first",
    "keep up the good work": "Keep up",
    "low priority": "Low priority",
    "possible overkill": "Possible overkill",
    "not enough ratings": "Not enough ratings",
}


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def go(at: AppTest, url_path: str) -> AppTest:
    """Open the page served at /<url_path> and run the app.

    ``AppTest.switch_page`` only addresses file-based pages; these pages are callables, which
    Streamlit registers under the hash of their URL path, so the test requests that hash.
    """
    at._page_hash = calc_hash(url_path)
    return run(at)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def open_app(url_path: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    return go(at, url_path) if url_path else run(at)


def sql(settings: Settings, text: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    conn = duckdb.connect(
        str(settings.serving_path),
        read_only=True,
        config={"autoinstall_known_extensions": False},
    )
    try:
        return conn.execute(text, params or {}).df()
    finally:
        conn.close()


def metrics(at: AppTest) -> dict[str, Any]:
    return {metric.label: metric for metric in at.metric}


def _title(spec: dict[str, Any]) -> str:
    title = spec.get("title")
    return title["text"] if isinstance(title, dict) else str(title)


def charts(at: AppTest) -> dict[str, tuple[dict[str, Any], dict[str, pd.DataFrame]]]:
    """Title -> (Vega-Lite spec, datasets by name) for every chart on the page."""
    found = {}
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        frames = {
            dataset.name: pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()
            for dataset in element.proto.datasets
        }
        found[_title(spec)] = (spec, frames)
    return found


def chart_data(at: AppTest, title: str) -> pd.DataFrame:
    """The rows a chart plots (its main layer's dataset)."""
    spec, frames = charts(at)[title]
    data = spec.get("data") or spec["layer"][0]["data"]
    return frames[data["name"]]


def _children(node: Any) -> list[Any]:
    children = getattr(node, "children", None)
    return list(children.values()) if isinstance(children, dict) else []


def tables(at: AppTest) -> dict[str, pd.DataFrame]:
    """Title -> rows of every DataTable on the page (trail expanders skipped)."""
    found: dict[str, pd.DataFrame] = {}
    last_title = ""

    def walk(node: Any) -> None:
        nonlocal last_title
        for child in _children(node):
            kind = getattr(child, "type", "")
            if kind == "expander":
                continue
            if kind == "markdown":
                match = re.fullmatch(r"\*\*(.+)\*\*", child.value)
                if match:
                    last_title = match.group(1)
            elif kind == "dataframe":
                found[last_title] = child.value
            walk(child)

    walk(at.main)
    return found


def texts(node: Any) -> str:
    """All the text inside a block (markdown, captions, code, alerts, tables)."""
    parts = []
    for child in _children(node):
        value = getattr(child, "value", None)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, pd.DataFrame):
            parts.append(value.to_string())
        parts.append(texts(child))
    return "\n".join(parts)


def trails(at: AppTest) -> list[Any]:
    return [expander for expander in at.expander if expander.label.startswith(TRAIL)]


def component_tags(url_path: str) -> int:
    """Charts, KPIs and tables a page file declares (counted from the file itself), leaving
    out those drawn only once an input has a value (``when=``): inputs start empty."""
    for path in PAGES.glob("*.md"):
        if re.search(rf"^url_path: {re.escape(url_path)}$", path.read_text(), re.MULTILINE):
            pattern = r"^<(BigValue|BarChart|LineChart|Heatmap|ScatterPlot|DataTable)\b(?!.* when=)"
            return len(re.findall(pattern, path.read_text(), re.MULTILINE))
    raise AssertionError(f"no page with url_path {url_path}")


def assert_frames_match(actual: pd.DataFrame, expected: pd.DataFrame, key: str) -> None:
    """Same keys in the same order; numbers equal to 1e-9 (nulls equal nulls)."""
    actual = actual.reset_index(drop=True)
    expected = expected.reset_index(drop=True)
    assert list(actual[key]) == list(expected[key])
    for column in expected.columns:
        pd.testing.assert_series_equal(
            actual[column].astype("float64" if column != key else object),
            expected[column].astype("float64" if column != key else object),
            check_names=False,
            rtol=1e-9,
        )


def copy_snapshot(settings: Settings, data_dir: Path) -> Settings:
    """A private copy of the published snapshot (with its artifacts) that a test may change."""
    copied = replace(settings, data_dir=data_dir)
    shutil.copytree(settings.serving_path.parent, copied.serving_path.parent)
    return copied


def edit_snapshot(path: Path, statements: list[str], publish_id: str) -> None:
    conn = duckdb.connect(str(path))
    try:
        for statement in statements:
            conn.execute(statement)
        conn.execute("update contrail_meta.snapshot set publish_id = ?", [publish_id])
        conn.execute("checkpoint")
    finally:
        conn.close()


# --- no snapshot ---------------------------------------------------------------------------


def test_missing_snapshot_gives_a_friendly_page_everywhere(empty_env: Settings) -> None:
    at = open_app()
    for url_path, title in PAGE_TITLES.items():
        go(at, url_path)
        assert [t.value for t in at.title] == [title]
        assert any("No data yet" in info.value for info in at.info)
        body = "\n".join(m.value for m in at.markdown)
        assert "make run" in body and "contrail run" in body
        assert str(empty_env.serving_path) in body
        assert not at.get("vega_lite_chart") and not at.metric
    assert "No snapshot published yet." in [c.value for c in at.sidebar.caption]


# --- overview ------------------------------------------------------------------------------


def test_overview_on_first_load_equals_the_marts(dashboard_env: Settings) -> None:
    at = open_app()
    assert [t.value for t in at.title] == ["Overview"]
    overall = sql(
        dashboard_env,
        "select responses, satisfaction_rate from marts.mart_satisfaction_by_segment "
        "where segment_type = 'overall'",
    ).iloc[0]
    shown = metrics(at)
    assert shown["Responses"].value == f"{int(overall.responses):,}"
    assert shown["Satisfaction rate"].value == f"{overall.satisfaction_rate:.1%}"

    # the change: the last 30 days of the range against the 30 before, computed with pandas
    surveys = sql(dashboard_env, "select survey_date, is_satisfied from marts.fct_survey_responses")
    last_day = surveys.survey_date.max()
    last = surveys[surveys.survey_date > last_day - timedelta(days=30)]
    previous = surveys[
        (surveys.survey_date <= last_day - timedelta(days=30))
        & (surveys.survey_date > last_day - timedelta(days=60))
    ]
    last_rate, previous_rate = last.is_satisfied.mean(), previous.is_satisfied.mean()
    assert shown["Last 30 days"].value == f"{last_rate:.1%}"
    assert shown["Prior 30 days"].value == f"{previous_rate:.1%}"
    expected_delta = f"{(last_rate - previous_rate) * 100:+.1f} pp vs prior 30 days"
    assert shown["Satisfaction rate"].delta == expected_delta

    for segment_type, title, column in [
        ("travel_class", "Satisfaction by travel class", "travel_class"),
        ("customer_type", "Satisfaction by customer type", "customer_type"),
        ("type_of_travel", "Satisfaction by type of travel", "type_of_travel"),
    ]:
        expected = sql(
            dashboard_env,
            "select segment_value as key, responses, satisfaction_rate "
            "from marts.mart_satisfaction_by_segment where segment_type = $t "
            "order by segment_value",
            {"t": segment_type},
        )
        plotted = chart_data(at, title).rename(columns={column: "key"})
        assert_frames_match(plotted[["key", "responses", "satisfaction_rate"]], expected, "key")

    bands = chart_data(at, "Satisfaction by age band")
    expected_bands = sql(
        dashboard_env,
        "select segment_value as age_band, responses, satisfaction_rate "
        "from marts.mart_satisfaction_by_segment where segment_type = 'age_band'",
    )
    order = ["under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65 and over", "unknown"]
    expected_bands = (
        expected_bands.set_index("age_band")
        .loc[[band for band in order if band in set(expected_bands.age_band)]]
        .reset_index()
    )
    assert_frames_match(
        bands[["age_band", "responses", "satisfaction_rate"]], expected_bands, "age_band"
    )

    daily = chart_data(at, "Daily satisfaction rate and its 7-day rolling rate")
    expected_daily = sql(
        dashboard_env,
        "select date_day, satisfaction_rate, rolling_7d_satisfaction_rate "
        "from marts.mart_daily_satisfaction order by date_day",
    )
    daily = daily.assign(date_day=pd.to_datetime(daily.date_day).dt.strftime("%Y-%m-%d"))
    expected_daily = expected_daily.assign(
        date_day=pd.to_datetime(expected_daily.date_day).dt.strftime("%Y-%m-%d")
    )
    assert_frames_match(daily[list(expected_daily.columns)], expected_daily, "date_day")


def test_overview_follows_the_filters(dashboard_env: Settings) -> None:
    at = open_app()
    at.multiselect(key="filter_travel_classes").set_value(["business"])
    run(at)
    business = sql(
        dashboard_env,
        "select count(*) as n, avg(case when is_satisfied then 1.0 else 0 end) as rate "
        "from marts.fct_survey_responses where travel_class = 'business'",
    ).iloc[0]
    shown = metrics(at)
    assert shown["Responses"].value == f"{int(business.n):,}"
    assert shown["Satisfaction rate"].value == f"{business.rate:.1%}"
    assert list(chart_data(at, "Satisfaction by travel class").travel_class) == ["business"]

    first, last = sql(
        dashboard_env,
        "select min(survey_date) as first, max(survey_date) as last "
        "from marts.fct_survey_responses",
    ).iloc[0]
    start = (first + timedelta(days=20)).date()
    end = (last - timedelta(days=40)).date()
    at.date_input(key="filter_date_range").set_value((start, end))
    at.multiselect(key="filter_customer_types").set_value(["loyal"])
    run(at)
    narrowed = sql(
        dashboard_env,
        "select count(*) as n from marts.fct_survey_responses where travel_class = 'business' "
        "and customer_type = 'loyal' and survey_date between $start and $end",
        {"start": start, "end": end},
    ).iloc[0]
    assert metrics(at)["Responses"].value == f"{int(narrowed.n):,}"
    assert int(narrowed.n) < int(business.n)

    # the filters stay when moving to another page
    go(at, "routes")
    routes_total = chart_data(at, "The 15 busiest routes (responses)").responses.sum()
    top_routes = sql(
        dashboard_env,
        "select count(*) as n from marts.fct_survey_responses where travel_class = 'business' "
        "and customer_type = 'loyal' and survey_date between $start and $end "
        "group by origin_airport, destination_airport order by n desc limit 15",
        {"start": start, "end": end},
    )
    assert routes_total == top_routes.n.sum()


def test_airport_route_and_channel_filters(dashboard_env: Settings) -> None:
    airport, route = sql(
        dashboard_env,
        "select origin_airport, origin_airport || '-' || destination_airport "
        "from marts.fct_survey_responses "
        "group by origin_airport, destination_airport order by count(*) desc, 2 limit 1",
    ).iloc[0]
    at = open_app()
    at.multiselect(key="filter_airports").set_value([airport])
    run(at)
    either_end = sql(
        dashboard_env,
        "select count(*) as n from marts.fct_survey_responses "
        "where origin_airport = $a or destination_airport = $a",
        {"a": airport},
    ).n[0]
    assert metrics(at)["Responses"].value == f"{either_end:,}"
    at.multiselect(key="filter_airports").set_value([])
    at.multiselect(key="filter_routes").set_value([route])
    run(at)
    on_route = sql(
        dashboard_env,
        "select count(*) as n from marts.fct_survey_responses "
        "where origin_airport || '-' || destination_airport = $r",
        {"r": route},
    ).n[0]
    assert metrics(at)["Responses"].value == f"{on_route:,}"
    at.multiselect(key="filter_routes").set_value([])
    at.multiselect(key="filter_channels").set_value(["batch"])
    run(at)
    batch = sql(
        dashboard_env,
        "select count(*) as n from marts.fct_survey_responses where channel = 'batch'",
    ).n[0]
    assert metrics(at)["Responses"].value == f"{batch:,}"


def test_every_chart_and_kpi_explains_how_it_was_computed(dashboard_env: Settings) -> None:
    at = open_app()
    for url_path in PAGE_TITLES:
        go(at, url_path)
        assert len(trails(at)) == component_tags(url_path), url_path
    go(at, "overview")
    for expander in trails(at):
        content = texts(expander)
        assert "marts.fct_survey_responses" in content
        assert "stg_raw__survey_responses" in content  # its lineage, back to staging
    go(at, "pipeline-health")
    assert "mart_pipeline_health" in texts(trails(at)[0])


def _one_unknown_page() -> None:
    from dashboards.navigation import main

    main(only="no-such-page")


def test_drawing_one_page_by_an_unknown_url_path_says_so(empty_env: Settings) -> None:
    at = AppTest.from_function(_one_unknown_page, default_timeout=60)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["No dashboard page is served at /no-such-page."]


def test_a_broken_page_shows_its_error_instead_of_its_content() -> None:
    def app() -> None:
        from pathlib import Path

        from dashboards.pages_spec import PageError
        from dashboards.render import render_broken_page

        render_broken_page(PageError(Path("dashboards/pages/new_page.md"), 12, "unknown component"))

    at = AppTest.from_function(app).run()
    assert [t.value for t in at.title] == ["New Page"]
    assert at.error[0].value == (
        "This page cannot be shown: dashboards/pages/new_page.md:12: unknown component"
    )


# --- service drivers -----------------------------------------------------------------------


def independent_drivers(settings: Settings, travel_class: str | None) -> pd.DataFrame:
    """Mean rating, importance and quadrant per service from fct_service_ratings (pandas)."""
    ratings = sql(
        settings,
        "select labels.service_label, r.rating, r.is_satisfied "
        "from marts.fct_service_ratings as r "
        "join marts.fct_survey_responses as s on r.survey_id = s.survey_id "
        "join marts.mart_service_drivers as labels on r.service = labels.service "
        "where $class is null or s.travel_class = $class",
        {"class": travel_class},
    )
    rows = []
    for label, group in ratings.groupby("service_label"):
        rated = group.dropna(subset=["rating"])
        high, low = rated[rated.rating >= 4], rated[rated.rating <= 2]
        importance = (
            high.is_satisfied.mean() - low.is_satisfied.mean()
            if len(high) and len(low)
            else float("nan")
        )
        rows.append(
            {"service_label": label, "mean_rating": rated.rating.mean(), "importance": importance}
        )
    frame = pd.DataFrame(rows)
    both = frame.dropna()
    avg_importance, avg_rating = both.importance.mean(), both.mean_rating.mean()

    def action(row: pd.Series) -> str:
        if pd.isna(row.importance) or pd.isna(row.mean_rating):
            return "Not enough ratings"
        if row.importance >= avg_importance:
            return "Fix first" if row.mean_rating < avg_rating else "Keep up"
        return "Low priority" if row.mean_rating < avg_rating else "Possible overkill"

    return frame.assign(action=frame.apply(action, axis=1)).sort_values("service_label")


def test_service_drivers_match_the_mart_and_follow_filters(dashboard_env: Settings) -> None:
    at = open_app("service-drivers")
    table_title = "Services by quadrant: fix first at the top"
    shown = tables(at)[table_title].sort_values("service_label")
    mart = sql(
        dashboard_env,
        "select service_label, mean_rating, importance, quadrant from marts.mart_service_drivers "
        "order by service_label",
    )
    assert_frames_match(
        shown[["service_label", "mean_rating", "importance"]],
        mart[["service_label", "mean_rating", "importance"]],
        "service_label",
    )
    assert list(shown.action) == [ACTIONS[q] for q in mart.quadrant]
    # ... which is also what fct_service_ratings says, computed another way
    assert list(shown.action) == list(independent_drivers(dashboard_env, None).action)

    spec, frames = charts(at)["Importance vs performance: what to fix first"]
    labels = {
        v for frame in frames.values() for v in frame.to_numpy().ravel() if isinstance(v, str)
    }
    assert {"Fix first", "Keep up", "Low priority", "Possible overkill"} <= labels
    assert [layer["mark"]["type"] for layer in spec["layer"]].count("rule") == 2

    not_applicable = sql(
        dashboard_env,
        "select labels.service_label, "
        "avg(case when r.is_not_applicable then 1.0 else 0.0 end) as not_applicable_share "
        "from marts.fct_service_ratings as r "
        "join marts.mart_service_drivers as labels on r.service = labels.service "
        "group by labels.service_label order by not_applicable_share desc, service_label",
    )
    plotted = chart_data(at, "Share of 'not applicable' answers per service")
    plotted = plotted.sort_values(
        ["not_applicable_share", "service_label"], ascending=[False, True]
    )
    assert_frames_match(
        plotted[["service_label", "not_applicable_share"]], not_applicable, "service_label"
    )

    at.multiselect(key="filter_travel_classes").set_value(["eco"])
    run(at)
    shown = tables(at)[table_title].sort_values("service_label")
    expected = independent_drivers(dashboard_env, "eco")
    assert_frames_match(
        shown[["service_label", "mean_rating", "importance"]],
        expected[["service_label", "mean_rating", "importance"]],
        "service_label",
    )
    assert list(shown.action) == list(expected.action)


def test_service_ratings_heatmap_by_the_chosen_segment(dashboard_env: Settings) -> None:
    at = open_app("service-drivers")
    at.selectbox(key="input_service-drivers_segment").set_value("customer_type")
    run(at)
    title = "Mean rating by service and segment (1-5, not applicable excluded)"
    cells = chart_data(at, title).sort_values(["segment", "service_label"])
    expected = sql(
        dashboard_env,
        "select coalesce(s.customer_type, 'unknown') as segment, labels.service_label, "
        "avg(r.rating) as mean_rating "
        "from marts.fct_service_ratings as r "
        "join marts.fct_survey_responses as s on r.survey_id = s.survey_id "
        "join marts.mart_service_drivers as labels on r.service = labels.service "
        "where r.rating is not null "
        "group by 1, 2 order by 1, 2",
    )
    assert list(zip(cells.segment, cells.service_label, strict=True)) == list(
        zip(expected.segment, expected.service_label, strict=True)
    )
    pd.testing.assert_series_equal(
        cells.mean_rating.reset_index(drop=True), expected.mean_rating, check_names=False
    )


# --- delays --------------------------------------------------------------------------------


def test_delays_follow_the_mart_band_order_and_the_filters(dashboard_env: Settings) -> None:
    at = open_app("delays")
    for delay_type, title, column in [
        ("departure", "Satisfaction by departure delay", "departure_delay_band"),
        ("arrival", "Satisfaction by arrival delay", "arrival_delay_band"),
    ]:
        expected = sql(
            dashboard_env,
            "select delay_band, responses, satisfaction_rate from marts.mart_delay_impact "
            "where delay_type = $t order by band_order",
            {"t": delay_type},
        )
        plotted = chart_data(at, title).rename(columns={column: "delay_band"})
        assert_frames_match(plotted[list(expected.columns)], expected, "delay_band")

    at.multiselect(key="filter_customer_types").set_value(["loyal"])
    run(at)
    plotted = chart_data(at, "Satisfaction by departure delay")
    expected = sql(
        dashboard_env,
        "select departure_delay_band, count(*) as responses, "
        "avg(case when is_satisfied then 1.0 else 0.0 end) as satisfaction_rate "
        "from marts.fct_survey_responses where customer_type = 'loyal' "
        "group by departure_delay_band",
    ).set_index("departure_delay_band")
    plotted = plotted[plotted.responses > 0].set_index("departure_delay_band")
    assert plotted.responses.to_dict() == expected.responses.to_dict()
    for band, rate in expected.satisfaction_rate.items():
        assert plotted.satisfaction_rate[band] == pytest.approx(rate)


def test_delayed_flights_by_route(dashboard_env: Settings) -> None:
    at = open_app("delays")
    at.number_input(key="input_delays_min_flights").set_value(2)
    run(at)
    surveys = sql(
        dashboard_env,
        "select flight_id, origin_airport, destination_airport, departure_delay_minutes "
        "from marts.fct_survey_responses "
        "where flight_id is not null and departure_delay_minutes is not null",
    )
    flights = (
        surveys.groupby(["flight_id", "origin_airport", "destination_airport"])
        .departure_delay_minutes.median()
        .reset_index()
    )
    flights["route"] = flights.origin_airport + "-" + flights.destination_airport
    flights["delayed"] = flights.departure_delay_minutes > 15
    per_route = flights.groupby("route").agg(
        flights=("flight_id", "size"), delayed_flights=("delayed", "sum")
    )
    per_route = per_route[per_route.flights >= 2]
    shown = tables(at)["Every ranked route"].set_index("route")
    assert len(shown) == len(per_route) > 0
    assert shown.flights.to_dict() == per_route.flights.to_dict()
    assert shown.delayed_flights.to_dict() == per_route.delayed_flights.to_dict()
    shares = list(shown.delayed_share)
    assert shares == sorted(shares, reverse=True)  # most delayed first
    top = chart_data(at, "Share of delayed flights: the 20 most delayed routes")
    assert list(top.route) == list(shown.index[:20])


# --- routes --------------------------------------------------------------------------------


def test_routes_worst_first_above_the_threshold(dashboard_env: Settings) -> None:
    at = open_app("routes")
    at.number_input(key="input_routes_min_responses").set_value(10)
    run(at)
    expected = sql(
        dashboard_env,
        "select origin_airport || '-' || destination_airport as route, count(*) as responses, "
        "avg(case when is_satisfied then 1.0 else 0.0 end) as satisfaction_rate "
        "from marts.fct_survey_responses group by origin_airport, destination_airport "
        "having count(*) >= 10 order by satisfaction_rate, responses desc, route",
    )
    shown = tables(at)["Every ranked route, worst first"]
    # Tables show a rate as a percentage: 0.583 reads 58.3%.
    in_percent = expected.assign(satisfaction_rate=expected.satisfaction_rate * 100)
    assert_frames_match(shown[list(expected.columns)], in_percent, "route")
    worst = chart_data(at, "The 15 least satisfied routes")
    assert list(worst.route) == list(expected.route[:15])
    counts = sql(
        dashboard_env,
        "select count(distinct origin_airport || '-' || destination_airport) as n "
        "from marts.fct_survey_responses",
    ).n[0]
    shown_metrics = metrics(at)
    assert shown_metrics["Routes flown"].value == f"{counts:,}"
    assert shown_metrics["Routes ranked"].value == f"{len(expected):,}"


# --- flight lookup -------------------------------------------------------------------------

PII_SAFE = {
    "survey_id",
    "flight_id",
    "route",
    "survey_submitted_at",
    "channel",
    "travel_class",
    "customer_type",
    "type_of_travel",
    "age_band",
    "satisfaction",
    "departure_delay_minutes",
    "arrival_delay_minutes",
}


def test_flight_lookup_by_flight_id_and_survey_id(dashboard_env: Settings) -> None:
    flight = sql(
        dashboard_env,
        "select flight_id, count(*) as n from marts.fct_survey_responses "
        "where flight_id is not null group by flight_id order by n desc, flight_id limit 1",
    ).iloc[0]
    expected_ids = sql(
        dashboard_env,
        "select survey_id from marts.fct_survey_responses where flight_id = $f "
        "order by survey_submitted_at, survey_id",
        {"f": flight.flight_id},
    ).survey_id

    at = open_app("flight-lookup")
    # Nothing is looked up before anything is typed: no results, and no "no match" either.
    assert "Matching surveys" not in tables(at)
    assert "Surveys" not in metrics(at)
    assert not any("No survey matches" in info.value for info in at.info)
    at.text_input(key="input_flight-lookup_lookup").input(f"  {flight.flight_id.lower()} ")
    run(at)
    matches = tables(at)["Matching surveys"]
    assert list(matches.survey_id) == list(expected_ids)
    assert set(matches.columns) <= PII_SAFE  # no passenger key, customer id, age or gender
    assert metrics(at)["Surveys"].value == f"{int(flight.n):,}"

    one = expected_ids.iloc[0]
    at.text_input(key="input_flight-lookup_lookup").input(one)
    run(at)
    assert list(tables(at)["Matching surveys"].survey_id) == [one]

    at.text_input(key="input_flight-lookup_lookup").input("SRV-does-not-exist")
    run(at)
    assert any("No survey matches" in info.value for info in at.info)


# --- live ----------------------------------------------------------------------------------


def test_live_without_stream_data_says_so(dashboard_env: Settings) -> None:
    at = open_app("live")
    infos = [info.value for info in at.info]
    assert any(text.startswith("No stream events yet") for text in infos)
    assert metrics(at)["Stream surveys"].value == "0"
    assert len(tables(at)["The 20 newest surveys (any channel)"]) == 20


def test_live_shows_stream_events_and_the_latest_cycle(
    published_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = copy_snapshot(published_settings, tmp_path / "data")
    edit_snapshot(
        settings.serving_path,
        [
            # 40 surveys arriving through the stream, one every 17 s from 10:00:00
            """
            insert into marts.fct_survey_responses
            select * exclude (n) replace (
                'SRV-STREAM-' || n as survey_id,
                'stream' as channel,
                timestamp '2026-12-01 10:00:00' + to_seconds(n * 17) as survey_submitted_at,
                timestamp '2026-12-01 10:00:04' + to_seconds(n * 17) as loaded_at,
                date '2026-12-01' as survey_date
            )
            from (
                select *, row_number() over (order by survey_id) as n
                from marts.fct_survey_responses
                limit 40
            )
            """,
            """
            insert into marts.mart_pipeline_health
                (row_kind, cycle_id, published_at, events_loaded, freshness_p50_s,
                 freshness_p95_s, freshness_max_s, cycle_s)
            values
                ('cycle', 'c1', timestamp '2026-12-01 10:05:00', 15, 9.5, 14.0, 16.0, 3.0),
                ('cycle', 'c2', timestamp '2026-12-01 10:11:00', 25, 4.25, 6.5, 7.0, 2.0)
            """,
        ],
        publish_id="live-test",
    )
    monkeypatch.setenv("CONTRAIL_DATA_DIR", str(settings.data_dir))
    at = open_app("live")
    stream = sql(
        settings,
        "select date_trunc('minute', survey_submitted_at) as minute_at, count(*) as n, "
        "max(survey_submitted_at) as newest "
        "from marts.fct_survey_responses where channel = 'stream' group by 1 order by 1",
    )
    shown = metrics(at)
    assert shown["Stream surveys"].value == f"{int(stream.n.sum()):,}" == "40"
    assert shown["Newest stream survey"].value == (f"{stream.newest.max():%Y-%m-%d %H:%M:%S}")
    assert shown["Median freshness"].value == "4.2 s"  # c2, the latest
    assert shown["p95 freshness"].value == "6.5 s"
    per_minute = chart_data(at, "Stream surveys per minute (the last hour of activity)")
    assert len(per_minute) == 60  # the hour up to the newest minute
    submitted = per_minute[per_minute.submitted > 0]
    assert list(pd.to_datetime(submitted.minute_at)) == list(pd.to_datetime(stream.minute_at))
    assert list(submitted.submitted) == list(stream.n)
    assert per_minute.landed.sum() == 40
    assert not any(info.value.startswith("No stream events yet") for info in at.info)


# --- pipeline health -----------------------------------------------------------------------


def test_pipeline_health_matches_raw_tables_and_artifacts(dashboard_env: Settings) -> None:
    at = open_app("pipeline-health")
    raw = sql(
        dashboard_env,
        "select (select count(*) from raw.load_audit) as loads, "
        "(select count(*) from raw.survey_responses) "
        "+ (select count(*) from raw.survey_events) as landed, "
        "(select count(*) from raw.quarantine) as quarantined, "
        "(select published_at from contrail_meta.snapshot) as published_at, "
        "(select publish_id from contrail_meta.snapshot) as publish_id",
    ).iloc[0]
    shown = metrics(at)
    assert shown["Loads"].value == f"{int(raw.loads):,}"
    assert shown["Rows landed"].value == f"{int(raw.landed):,}"
    assert shown["Rows quarantined"].value == f"{int(raw.quarantined):,}"
    assert shown["Snapshot built at (UTC)"].value == f"{raw.published_at:%Y-%m-%d %H:%M:%S}"

    artifact = dashboard_env.serving_artifacts_dir / raw.publish_id / "run_results.json"
    results = json.loads(artifact.read_text())["results"]
    statuses = pd.Series(
        [r["status"] for r in results if r["unique_id"].split(".")[0] in ("test", "unit_test")]
    ).value_counts()
    plotted = chart_data(at, "dbt tests by status (latest result of each)")
    assert dict(zip(plotted.status, plotted.tests, strict=True)) == statuses.to_dict()
    passed = statuses.get("pass", 0) / statuses.sum()
    assert shown["dbt tests passing"].value == f"{passed:.1%}"

    freshness = tables(at)["dbt source freshness (at build time)"]
    sources = json.loads((artifact.parent / "sources.json").read_text())["results"]
    assert sorted(freshness.source) == sorted(
        r["unique_id"].removeprefix("source.contrail.") for r in sources
    )


# --- the build file is not the app's -------------------------------------------------------


def test_pages_render_while_a_build_holds_the_warehouse_for_writing(
    published_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = copy_snapshot(published_settings, tmp_path / "data")
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(published_settings.warehouse_path, settings.warehouse_path)
    monkeypatch.setenv("CONTRAIL_DATA_DIR", str(settings.data_dir))
    expected = sql(settings, "select count(*) as n from marts.fct_survey_responses").n[0]

    build = duckdb.connect(str(settings.warehouse_path))  # what dbt holds while it builds
    try:
        build.execute("begin transaction")
        build.execute("delete from marts.fct_survey_responses")  # uncommitted, as mid-build
        # The lock is real: another process cannot open the build file even to read it.
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import duckdb, sys; duckdb.connect(sys.argv[1], read_only=True)",
                str(settings.warehouse_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert probe.returncode != 0 and "lock" in probe.stderr.lower(), probe.stderr

        at = open_app()
        for url_path, title in PAGE_TITLES.items():
            go(at, url_path)  # raises on any exception or error element
            assert [t.value for t in at.title] == [title]
        go(at, "overview")
        assert metrics(at)["Responses"].value == f"{expected:,}"
    finally:
        build.close()


# --- a new snapshot ------------------------------------------------------------------------


def test_a_swapped_snapshot_is_read_on_the_next_interaction(
    published_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = copy_snapshot(published_settings, tmp_path / "data")
    monkeypatch.setenv("CONTRAIL_DATA_DIR", str(settings.data_dir))
    at = open_app()
    before = sql(settings, "select count(*) as n from marts.fct_survey_responses").n[0]
    assert metrics(at)["Responses"].value == f"{before:,}"

    # publish a smaller snapshot the way ingestion.publish does: a copy swapped in atomically
    staged = settings.serving_path.with_name("next.duckdb")
    shutil.copyfile(settings.serving_path, staged)
    edit_snapshot(
        staged,
        [
            "delete from marts.fct_survey_responses where survey_id in "
            "(select survey_id from marts.fct_survey_responses order by survey_id limit 100)"
        ],
        publish_id="swapped",
    )
    os.replace(staged, settings.serving_path)

    run(at)
    assert metrics(at)["Responses"].value == f"{before - 100:,}"
