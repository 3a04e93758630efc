"""The trail behind every number, against a snapshot the real pipeline built and published.

Expected values come from SQL written here against the snapshot and from the published
artifacts read here directly, never from the trail's own helpers.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboards import trail as trail_module
from dashboards.filters import Filters
from dashboards.snapshot import snapshot_info
from dashboards.trail import (
    TrailRequest,
    bind_for_display,
    build_trail,
    clear_caches,
    describe_parameters,
    sql_literal,
)
from ingestion.config import Settings

FCT = "model.contrail.fct_survey_responses"
KPI_SQL = (
    "select count(*) as responses, avg(case when s.is_satisfied then 1.0 else 0.0 end) "
    "as satisfaction_rate from marts.fct_survey_responses as s where {filters}"
)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    clear_caches()
    yield
    clear_caches()


def _scalar(settings: Settings, sql: str, params: dict[str, Any] | None = None) -> Any:
    conn = duckdb.connect(str(settings.serving_path), read_only=True)
    try:
        row = conn.execute(sql, params or {}).fetchone()
    finally:
        conn.close()
    return row[0] if row else None


def _rows(settings: Settings, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    conn = duckdb.connect(str(settings.serving_path), read_only=True)
    try:
        return conn.execute(sql, params or {}).fetchall()
    finally:
        conn.close()


def _request(filters: Filters, sql: str = KPI_SQL, title: str = "Responses") -> TrailRequest:
    predicate, params = filters.where("s")
    return TrailRequest(title, sql.format(filters=predicate), params, filters)


def _artifact(settings: Settings, name: str) -> dict[str, Any]:
    info = snapshot_info(settings)
    return json.loads((settings.serving_artifacts_dir / info.publish_id / name).read_text())


def _copy_snapshot(
    source: Settings,
    data_dir: Path,
    publish_id: str | None,
    edit: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
    artifacts: bool = True,
) -> Settings:
    """A private copy of the published snapshot, restamped with ``publish_id``.

    ``publish_id=None`` drops ``contrail_meta`` (an older snapshot, from before artifacts were
    published); ``artifacts=False`` leaves the artifacts behind.
    """
    settings = replace(source, data_dir=data_dir)
    settings.serving_path.parent.mkdir(parents=True)
    shutil.copyfile(source.serving_path, settings.serving_path)
    old_id = snapshot_info(source).publish_id
    if artifacts and publish_id is not None:
        folder = settings.serving_artifacts_dir / publish_id
        shutil.copytree(source.serving_artifacts_dir / old_id, folder)
        results = json.loads((folder / "run_results.json").read_text())
        results["metadata"]["contrail_publish_id"] = publish_id
        (folder / "run_results.json").write_text(json.dumps(results))
    conn = duckdb.connect(str(settings.serving_path))
    try:
        if publish_id is None:
            conn.execute("drop schema contrail_meta cascade")
        else:
            conn.execute("update contrail_meta.snapshot set publish_id = ?", [publish_id])
        if edit is not None:
            edit(conn)
        conn.execute("checkpoint")
    finally:
        conn.close()
    return settings


def _add_stream_and_quarantine(conn: duckdb.DuckDBPyConnection) -> None:
    """Stream records for every 4th batch survey, a redelivered copy of every 8th that says
    "Business" (the staging view keeps the first copy), and three quarantined lines."""
    conn.execute(
        """
        insert into raw.survey_events by name
        select
            r.* exclude (batch_id, source_file, source_line, loaded_at, file_sha256),
            'evt-' || r.survey_id as event_id,
            'survey_submitted' as event_type,
            1 as schema_version,
            r.survey_submitted_at as submitted_at,
            0 as byte_offset,
            'stream-' || (r.source_line % 3) as batch_id,
            'firehose/object-' || (r.source_line % 3) as source_file,
            r.source_line as source_line,
            r.loaded_at + interval 1 hour as loaded_at,
            'sha' as file_sha256
        from raw.survey_responses as r
        where r.source_line % 4 = 0
        """
    )
    conn.execute(
        """
        insert into raw.survey_events by name
        select
            e.* exclude (batch_id, loaded_at, travel_class),
            'stream-redelivered' as batch_id,
            e.loaded_at + interval 1 hour as loaded_at,
            'Business' as travel_class
        from raw.survey_events as e
        where e.source_line % 8 = 0
        """
    )
    conn.execute(
        """
        insert into raw.quarantine by name
        select 'csv-broken' as batch_id, 'csv' as source_kind, 'broken.csv' as source_file,
               i as source_line, 'blank_line' as reason, 'line is blank' as detail
        from range(2, 5) as t(i)
        """
    )


@pytest.fixture(scope="module")
def stream_settings(
    published_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    """The published snapshot plus landed stream records (some redelivered) and quarantine."""
    data_dir = tmp_path_factory.mktemp("trail-stream") / "data"
    return _copy_snapshot(published_settings, data_dir, "trail-stream", _add_stream_and_quarantine)


def _some_date(settings: Settings) -> date:
    """A date inside the data, so a date filter keeps some surveys and drops others."""
    first, last = _rows(
        settings, "select min(survey_date), max(survey_date) from marts.fct_survey_responses"
    )[0]
    return first + (last - first) / 3


def _stage_rows(trail: Any) -> dict[str, int | None]:
    return {stage.relation: stage.rows for stage in trail.stages}


# --- Lineage ------------------------------------------------------------------------------


def test_lineage_of_the_fact_table_reaches_the_raw_sources(published_settings: Settings) -> None:
    info = snapshot_info(published_settings)
    trail = build_trail(_request(Filters()), published_settings, info)

    manifest = _artifact(published_settings, "manifest.json")
    upstream, frontier = set(), [FCT]
    while frontier:  # parent_map, not depends_on: an independent view of the same graph
        node = frontier.pop()
        if node not in upstream:
            upstream.add(node)
            frontier.extend(manifest["parent_map"].get(node, []))

    assert trail.lineage is not None
    assert trail.lineage.read == (FCT,)
    assert trail.relations == ("marts.fct_survey_responses",)
    assert {n.unique_id for n in trail.lineage.nodes} == upstream
    for expected in (
        "model.contrail.stg_raw__survey_responses",
        "model.contrail.stg_raw__survey_events",
        "model.contrail.int_surveys__deduplicated",
        "source.contrail.raw.survey_responses",
        "source.contrail.raw.survey_events",
    ):
        assert expected in upstream
    depth = {n.relation: n.depth for n in trail.lineage.nodes}
    assert depth["marts.fct_survey_responses"] == 0
    assert depth["intermediate.int_surveys__deduplicated"] == 1
    assert depth["staging.stg_raw__survey_responses"] == 2
    assert depth["raw.survey_responses"] == 3


def test_lineage_of_a_join_names_every_model_and_flags_tables_dbt_did_not_build(
    published_settings: Settings,
) -> None:
    sql = (
        "select a.city, count(*) from marts.fct_survey_responses as s "
        "join marts.dim_airport as a on a.airport_code = s.origin_airport, contrail_meta.snapshot "
        "where s.channel <> 'marts.mart_delay_impact' group by a.city"
    )
    trail = build_trail(
        TrailRequest("Airports", sql, {}, Filters()),
        published_settings,
        snapshot_info(published_settings),
    )

    assert trail.lineage is not None
    assert set(trail.lineage.read) == {FCT, "model.contrail.dim_airport"}
    assert "seed.contrail.airports" in {n.unique_id for n in trail.lineage.nodes}
    assert "model.contrail.mart_delay_impact" not in {n.unique_id for n in trail.lineage.nodes}
    assert trail.lineage.unknown == ("contrail_meta.snapshot",)
    assert any("contrail_meta.snapshot" in note for note in trail.notes)


def test_a_query_on_seeded_reference_data_has_no_stage_counts(
    published_settings: Settings,
) -> None:
    trail = build_trail(
        TrailRequest("Airports", "select count(*) from marts.dim_airport", {}, Filters()),
        published_settings,
        snapshot_info(published_settings),
    )

    assert trail.lineage is not None
    assert {n.unique_id for n in trail.lineage.nodes} == {
        "model.contrail.dim_airport",
        "seed.contrail.airports",
    }
    assert trail.stages == ()
    assert any("no survey rows" in note for note in trail.notes)


# --- Tests and their status ---------------------------------------------------------------


def test_tests_on_the_fact_table_are_the_manifests_with_their_status(
    published_settings: Settings,
) -> None:
    trail = build_trail(_request(Filters()), published_settings, snapshot_info(published_settings))
    manifest = _artifact(published_settings, "manifest.json")
    results = {
        r["unique_id"]: r["status"]
        for r in _artifact(published_settings, "run_results.json")["results"]
    }
    expected = {
        unique_id
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] == "test" and FCT in node["depends_on"]["nodes"]
    } | {
        unique_id
        for unique_id, node in manifest["unit_tests"].items()
        if node["model"] == "fct_survey_responses"
    }

    assert trail.lineage is not None
    listed = {t.unique_id: t for t in trail.lineage.tests_on(FCT)}
    assert set(listed) == expected
    assert any(t.kind == "unit" for t in listed.values())
    assert any(t.kind == "singular" for t in listed.values())
    assert {t.status for t in listed.values()} == {"pass"}
    assert all(results[uid] == "pass" for uid in listed)
    assert all(t.built_at for t in listed.values())


def test_a_test_without_a_result_says_not_run(published_settings: Settings, tmp_path: Path) -> None:
    settings = _copy_snapshot(published_settings, tmp_path / "data", "trail-not-run")
    results_path = settings.serving_artifacts_dir / "trail-not-run" / "run_results.json"
    results = json.loads(results_path.read_text())
    dropped = "unit_test.contrail.fct_survey_responses.test_fct_survey_responses_delay_bands"
    results["results"] = [r for r in results["results"] if r["unique_id"] != dropped]
    results_path.write_text(json.dumps(results))

    trail = build_trail(_request(Filters()), settings, snapshot_info(settings))

    assert trail.lineage is not None
    statuses = {t.unique_id: t.status for t in trail.lineage.tests_on(FCT)}
    assert statuses[dropped] == "not run"
    assert {s for uid, s in statuses.items() if uid != dropped} == {"pass"}


# --- Stage counts -------------------------------------------------------------------------


@pytest.mark.parametrize("filtered", [False, True], ids=["default", "business-after-date"])
def test_stage_counts_equal_independent_counts(stream_settings: Settings, filtered: bool) -> None:
    start = _some_date(stream_settings)
    if filtered:
        filters = Filters(travel_classes=("business",), date_from=start)
        staged_where = (
            "lower(trim(travel_class)) = 'business' and cast(survey_submitted_at as date) >= $start"
        )
        modelled_where = "travel_class = 'business' and survey_date >= $start"
        params = {"start": start}
    else:
        filters = Filters()
        staged_where = modelled_where = "true"
        params = {}

    trail = build_trail(_request(filters), stream_settings, snapshot_info(stream_settings))
    counts = _stage_rows(trail)

    def count(sql: str) -> int:
        return _scalar(stream_settings, sql, params if "$start" in sql else None)

    first_copies = (
        "select * from raw.survey_events qualify row_number() over "
        "(partition by event_id order by loaded_at, batch_id, source_line) = 1"
    )
    expected = {
        "raw.survey_responses": count("select count(*) from raw.survey_responses"),
        "raw.survey_events": count("select count(*) from raw.survey_events"),
        "raw.quarantine": count("select count(*) from raw.quarantine"),
        "staging.stg_raw__survey_responses": count(
            f"select count(*) from raw.survey_responses where {staged_where}"
        ),
        "staging.stg_raw__survey_events": count(
            f"select count(*) from ({first_copies}) where {staged_where}"
        ),
        "intermediate.int_surveys__deduplicated": count(
            f"select count(*) from intermediate.int_surveys__deduplicated where {modelled_where}"
        ),
        "marts.fct_survey_responses": count(
            f"select count(*) from marts.fct_survey_responses where {modelled_where}"
        ),
    }
    assert counts == expected
    assert expected["raw.quarantine"] == 3
    assert 0 < expected["staging.stg_raw__survey_events"] < expected["raw.survey_events"]
    if filtered:
        assert (
            0
            < expected["marts.fct_survey_responses"]
            < count("select count(*) from marts.fct_survey_responses")
        )
    assert [s.stage for s in trail.stages] == [
        "landed",
        "landed",
        "quarantined",
        "staged",
        "staged",
        "deduplicated",
        "mart",
    ]
    filtered_stages = {s.relation for s in trail.stages if s.filtered}
    assert filtered_stages == {
        "staging.stg_raw__survey_responses",
        "staging.stg_raw__survey_events",
        "intermediate.int_surveys__deduplicated",
        "marts.fct_survey_responses",
    }
    assert all("cannot apply" in s.note for s in trail.stages if not s.filtered)


def test_the_mart_count_equals_the_kpi_it_explains(published_settings: Settings) -> None:
    filters = Filters(customer_types=("loyal",), channels=("batch",))
    request = _request(filters)
    trail = build_trail(request, published_settings, snapshot_info(published_settings))

    kpi = _scalar(published_settings, request.sql, request.params)
    assert _stage_rows(trail)["marts.fct_survey_responses"] == kpi
    assert 0 < kpi < _scalar(published_settings, "select count(*) from marts.fct_survey_responses")


def test_staged_rows_wait_for_a_request_past_the_threshold(
    stream_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trail_module, "STAGED_EAGER_MAX_RECORDS", 10)
    info = snapshot_info(stream_settings)
    lazy = build_trail(_request(Filters()), stream_settings, info)
    asked = build_trail(_request(Filters()), stream_settings, info, count_staged=True)

    assert not lazy.staged_counted
    assert _stage_rows(lazy)["staging.stg_raw__survey_events"] is None
    assert _stage_rows(lazy)["marts.fct_survey_responses"] == _scalar(
        stream_settings, "select count(*) from marts.fct_survey_responses"
    )
    assert asked.staged_counted
    assert _stage_rows(asked)["staging.stg_raw__survey_responses"] == _scalar(
        stream_settings, "select count(*) from raw.survey_responses"
    )


def test_source_files_are_those_of_the_matching_surveys(stream_settings: Settings) -> None:
    filters = Filters(travel_types=("business",))
    trail = build_trail(_request(filters), stream_settings, snapshot_info(stream_settings))

    expected = _rows(
        stream_settings,
        "select source_file, batch_id, count(*) from marts.fct_survey_responses "
        "where type_of_travel = 'business' group by source_file, batch_id "
        "order by 3 desc, 1, 2",
    )
    got = [(f.source_file, f.batch_id, f.surveys) for f in trail.source_files]
    assert got == expected[: trail_module.TOP_SOURCE_FILES]
    assert trail.source_files_total == len(expected)
    kind, status = _rows(
        stream_settings,
        "select source_kind, status from raw.load_audit where batch_id = $b",
        {"b": expected[0][1]},
    )[0]
    assert (trail.source_files[0].source_kind, trail.source_files[0].load_status) == (kind, status)


# --- Freshness ----------------------------------------------------------------------------


def test_freshness_reports_the_build_time_newest_rows_and_source_checks(
    published_settings: Settings,
) -> None:
    info = snapshot_info(published_settings)
    trail = build_trail(_request(Filters()), published_settings, info)
    submitted, loaded = _rows(
        published_settings,
        "select max(survey_submitted_at), max(loaded_at) from marts.fct_survey_responses",
    )[0]
    sources = _artifact(published_settings, "sources.json")

    fresh = trail.freshness
    assert fresh.published_at == info.published_at is not None
    assert (fresh.newest_submitted_at, fresh.newest_loaded_at) == (submitted, loaded)
    assert fresh.age(loaded) == fresh.as_of - loaded
    assert fresh.age(loaded) >= timedelta(0)
    expected = {
        r["unique_id"]: r["status"]
        for r in sources["results"]
        if r["unique_id"]
        in ("source.contrail.raw.survey_responses", "source.contrail.raw.survey_events")
    }
    assert {s.source: s.status for s in fresh.sources} == expected
    assert expected["source.contrail.raw.survey_responses"] == "pass"


# --- The SQL as executed and as read ------------------------------------------------------


def test_literals_quote_strings_and_lists_safely() -> None:
    assert sql_literal("O'Hare") == "'O''Hare'"
    assert sql_literal(["O'Hare", "JFK"]) == "['O''Hare', 'JFK']"
    assert sql_literal(("a'); drop table x; --",)) == "['a''); drop table x; --']"
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "true"
    assert sql_literal(3) == "3"
    assert sql_literal(date(2026, 3, 1)) == "DATE '2026-03-01'"
    assert sql_literal(float("nan")) == "'nan'::DOUBLE"
    assert sql_literal(np.array(["O'Hare", "JFK"])) == "['O''Hare', 'JFK']"  # values from pandas
    assert sql_literal(np.int64(7)) == "7"


def test_substitution_leaves_strings_comments_and_unbound_names_alone() -> None:
    sql = (
        "select '$a' as text, $a as value, $ab as other -- $a\n"
        "from t where x = $missing and y = $$ $a $$"
    )
    bound = bind_for_display(sql, {"a": "O'Hare", "ab": [1, 2]})
    assert bound == (
        "select '$a' as text, 'O''Hare' as value, [1, 2] as other -- $a\n"
        "from t where x = $missing and y = $$ $a $$"
    )
    parameters = describe_parameters(sql, {"a": "x", "unused": 1})
    assert [(p.name, p.used) for p in parameters] == [("a", True), ("unused", False)]


def test_the_substituted_sql_computes_what_the_parameterised_sql_computes(
    published_settings: Settings,
) -> None:
    start = _some_date(published_settings)
    filters = Filters(
        date_from=start,
        date_to=start + timedelta(days=60),
        travel_classes=("eco", "eco plus"),
        airports=("O'Hare", "JFK", "LAX", "ORD"),
        channels=("batch",),
    )
    request = _request(filters)
    trail = build_trail(request, published_settings, snapshot_info(published_settings))

    assert "'O''Hare'" in trail.bound_sql
    assert "$filter_" not in trail.bound_sql
    assert "$filter_airports" in trail.sql
    as_executed = _rows(published_settings, request.sql, request.params)
    as_read = _rows(published_settings, trail.bound_sql)
    assert as_read == as_executed
    assert as_executed[0][0] > 0
    assert {p.name for p in trail.parameters} == set(request.params)


# --- Missing artifacts and caching --------------------------------------------------------


def test_missing_artifacts_are_reported_not_raised(
    published_settings: Settings, tmp_path: Path
) -> None:
    settings = _copy_snapshot(published_settings, tmp_path / "data", "gone", artifacts=False)
    info = snapshot_info(settings)
    assert info.has_artifacts  # the snapshot says it had them; they were pruned or lost

    trail = build_trail(_request(Filters()), settings, info)

    assert trail.lineage is None
    assert any("manifest.json" in note and "missing" in note for note in trail.notes)
    assert trail.relations == ("marts.fct_survey_responses",)
    assert _stage_rows(trail)["marts.fct_survey_responses"] == _scalar(
        settings, "select count(*) from marts.fct_survey_responses"
    )
    assert trail.freshness.sources == ()


def test_a_snapshot_from_before_artifacts_says_so(
    published_settings: Settings, tmp_path: Path
) -> None:
    settings = _copy_snapshot(published_settings, tmp_path / "data", None, artifacts=False)
    info = snapshot_info(settings)
    assert not info.has_artifacts

    trail = build_trail(_request(Filters()), settings, info)

    assert trail.lineage is None
    assert any("without dbt artifacts" in note for note in trail.notes)
    assert trail.freshness.published_at is None
    assert trail.freshness.newest_loaded_at is not None


def test_a_new_publish_id_misses_the_cache(published_settings: Settings, tmp_path: Path) -> None:
    settings = _copy_snapshot(published_settings, tmp_path / "data", "first")
    before = _stage_rows(build_trail(_request(Filters()), settings, snapshot_info(settings)))

    conn = duckdb.connect(str(settings.serving_path))
    try:
        conn.execute("delete from marts.fct_survey_responses where source_line % 2 = 0")
        conn.execute("checkpoint")
    finally:
        conn.close()
    same_id = _stage_rows(build_trail(_request(Filters()), settings, snapshot_info(settings)))
    conn = duckdb.connect(str(settings.serving_path))
    try:
        conn.execute("update contrail_meta.snapshot set publish_id = 'second'")
        conn.execute("checkpoint")
    finally:
        conn.close()
    shutil.copytree(
        settings.serving_artifacts_dir / "first", settings.serving_artifacts_dir / "second"
    )
    new_info = snapshot_info(settings)
    after = _stage_rows(build_trail(_request(Filters()), settings, new_info))

    remaining = _scalar(settings, "select count(*) from marts.fct_survey_responses")
    assert same_id == before  # same publish id: served from the cache
    assert after["marts.fct_survey_responses"] == remaining
    assert remaining < before["marts.fct_survey_responses"]


# --- Rendering ----------------------------------------------------------------------------


def _trail_page(
    data_dir: str, sql: str, travel_class: str | None, remove_snapshot: bool = False
) -> None:
    from dataclasses import replace
    from pathlib import Path

    import streamlit as st

    from dashboards.filters import Filters
    from dashboards.snapshot import snapshot_info
    from dashboards.trail import TrailRequest, render_trail
    from ingestion.config import Settings

    settings = replace(Settings.from_env({}), data_dir=Path(data_dir))
    info = snapshot_info(settings)
    if remove_snapshot:  # as if it vanished between reading the number and its trail
        settings.serving_path.unlink()
    filters = Filters(travel_classes=(travel_class,)) if travel_class else Filters()
    predicate, params = filters.where("s")
    st.metric("Responses", 0)
    with st.expander("How was this computed?"):
        render_trail(
            TrailRequest("Responses", sql.format(filters=predicate), params, filters),
            settings,
            info,
        )


def _expander_text(at: AppTest) -> str:
    expander = at.expander[0]
    parts = [m.value for m in expander.markdown]
    parts += [c.value for c in expander.code]
    parts += [c.value for c in expander.caption]
    parts += [i.value for i in expander.info]
    parts += [d.value.to_csv() for d in expander.dataframe]
    return "\n".join(parts)


def test_the_expander_shows_sql_models_tests_and_counts(published_settings: Settings) -> None:
    at = AppTest.from_function(
        _trail_page,
        kwargs={
            "data_dir": str(published_settings.data_dir),
            "sql": KPI_SQL,
            "travel_class": "business",
        },
    ).run(timeout=60)

    assert not at.exception
    assert at.expander[0].label == "How was this computed?"
    text = _expander_text(at)
    for name in (
        "marts.fct_survey_responses",
        "intermediate.int_surveys__deduplicated",
        "staging.stg_raw__survey_responses",
        "raw.survey_responses",
        "unique_fct_survey_responses_survey_id",
    ):
        assert name in text
    assert "list_contains(['business'], s.travel_class)" in text
    assert "$filter_travel_classes" in text
    mart = _scalar(
        published_settings,
        "select count(*) from marts.fct_survey_responses where travel_class = 'business'",
    )
    assert f"- mart `marts.fct_survey_responses`: **{mart:,}** with the filters" in text
    assert [t.label for t in at.expander[0].tabs] == [
        "SQL",
        "Lineage",
        "Row counts",
        "Tests",
        "Freshness",
    ]


def test_the_staged_toggle_counts_on_demand(
    stream_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trail_module, "STAGED_EAGER_MAX_RECORDS", 10)
    at = AppTest.from_function(
        _trail_page,
        kwargs={"data_dir": str(stream_settings.data_dir), "sql": KPI_SQL, "travel_class": None},
    ).run(timeout=60)
    assert not at.exception
    assert "not counted yet" in _expander_text(at)

    at.expander[0].toggle[0].set_value(True).run(timeout=60)

    assert not at.exception
    events = _scalar(
        stream_settings,
        "select count(distinct event_id) from raw.survey_events",
    )
    assert f"- staged `staging.stg_raw__survey_events`: **{events:,}** with the filters" in (
        _expander_text(at)
    )


def test_the_expander_of_an_old_snapshot_explains_what_is_missing(
    published_settings: Settings, tmp_path: Path
) -> None:
    settings = _copy_snapshot(published_settings, tmp_path / "data", None, artifacts=False)
    at = AppTest.from_function(
        _trail_page,
        kwargs={"data_dir": str(settings.data_dir), "sql": KPI_SQL, "travel_class": None},
    ).run(timeout=60)

    assert not at.exception
    text = _expander_text(at)
    assert "without dbt artifacts" in text
    assert "marts.fct_survey_responses" in text


def test_a_snapshot_gone_before_its_trail_gives_a_warning_not_a_traceback(
    published_settings: Settings, tmp_path: Path
) -> None:
    settings = _copy_snapshot(published_settings, tmp_path / "data", "vanishing")
    at = AppTest.from_function(
        _trail_page,
        kwargs={
            "data_dir": str(settings.data_dir),
            "sql": KPI_SQL,
            "travel_class": None,
            "remove_snapshot": True,
        },
    ).run(timeout=60)

    assert not at.exception
    assert "could not be built" in at.expander[0].warning[0].value
    assert "no published snapshot" in at.expander[0].warning[0].value
