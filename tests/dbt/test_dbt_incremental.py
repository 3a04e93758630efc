"""The incremental survey models, on DuckDB and PostgreSQL: batch rows, then streamed events
in several steps, each followed by the micro-batch build (`dbt build --selector stream_cycle`,
in-process as `contrail stream run` runs it), then `dbt build --full-refresh`, which must leave
every mart exactly as it was.

The steps hold a late event (submitted days before it landed), newer copies of existing
surveys through both channels (one asking fewer services, one asking none), a redelivered
event, and a delivery object that landed before the newest one already built (a load that
committed after the previous cycle). Expected values are computed here from these rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingestion.build import BuildResult, invoke_dbt
from ingestion.config import PostgresSettings, Settings
from ingestion.schema import LOAD_AUDIT, RATING_COLUMNS, SURVEY_EVENTS, SURVEY_RESPONSES, RawTable

from .conftest import Warehouse

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 2, 6, 0)
ANSWERS: dict[str, Any] = {
    "satisfaction": "satisfied",
    "gender": "Female",
    "customer_type": "Loyal Customer",
    "type_of_travel": "Business travel",
    "travel_class": "Eco",
    "flight_distance": 900,
    "departure_delay_minutes": 5,
    "arrival_delay_minutes": 0,
}
# The Invistico layout asks every service but inflight_service; 0 means "not applicable".
ALL_RATINGS = {name: (i % 6) for i, name in enumerate(RATING_COLUMNS[:-1])}
FEW_RATINGS = {"seat_comfort": 5, "cleanliness": 0, "inflight_service": 2}


def batch_row(survey_id: str, age: int, ratings: dict[str, int]) -> dict[str, Any]:
    return {
        "survey_id": survey_id,
        "customer_id": f"CUS-{survey_id}",
        "survey_submitted_at": T0 - timedelta(days=1),
        **ANSWERS,
        "age": age,
        **ratings,
    }


def event_row(
    event_id: str, survey_id: str, age: int, ratings: dict[str, int], submitted_at: datetime
) -> dict[str, Any]:
    return {
        **batch_row(survey_id, age, ratings),
        "event_id": event_id,
        "event_type": "survey_submitted",
        "schema_version": 1,
        "submitted_at": submitted_at,
        "survey_submitted_at": submitted_at,
    }


# Each step lands batches (table, batch_id, loaded_at, rows), then builds.
Batch = tuple[RawTable, str, datetime, list[dict[str, Any]]]
STEPS: list[list[Batch]] = [
    [
        (
            SURVEY_RESPONSES,
            "csv-a",
            T0,
            [batch_row(f"B{n}", 30 + n, ALL_RATINGS) for n in range(1, 5)],
        ),
    ],
    [
        (
            SURVEY_EVENTS,
            "firehose-1",
            T0 + timedelta(hours=2),
            [
                event_row("e1", "S1", 40, ALL_RATINGS, T0 + timedelta(hours=2)),
                # a newer copy of B1 that asks about three services only
                event_row("e2", "B1", 41, FEW_RATINGS, T0 + timedelta(hours=2)),
            ],
        ),
    ],
    [
        (
            SURVEY_EVENTS,
            "firehose-2",
            T0 + timedelta(hours=3),
            [
                # late: submitted five days before it landed
                event_row("e3", "S2", 42, ALL_RATINGS, T0 - timedelta(days=5)),
                # a newer copy of B2 that asks about no service at all
                event_row("e4", "B2", 43, {}, T0 + timedelta(hours=3)),
                # e1 delivered again (altered so that a wrong pick would show): the first stays
                event_row("e1", "S1", 49, FEW_RATINGS, T0 + timedelta(hours=2)),
            ],
        ),
    ],
    [
        # landed half an hour before the newest object already built, inside the lookback
        (
            SURVEY_EVENTS,
            "firehose-3",
            T0 + timedelta(hours=2, minutes=30),
            [
                event_row("e5", "S3", 44, ALL_RATINGS, T0 + timedelta(hours=2)),
                event_row("e6", "B3", 52, FEW_RATINGS, T0 + timedelta(hours=2)),
            ],
        ),
        (
            SURVEY_RESPONSES,
            "csv-b",
            T0 + timedelta(hours=2, minutes=45),
            [batch_row("B1", 61, ALL_RATINGS), batch_row("B4", 64, FEW_RATINGS)],
        ),
    ],
]


def raw_rows(batches: list[Batch]) -> list[tuple[RawTable, list[dict[str, Any]]]]:
    """The rows to insert for some batches, with their load metadata and audit rows."""
    out: list[tuple[RawTable, list[dict[str, Any]]]] = []
    for table, batch_id, loaded_at, rows in batches:
        landed = [
            {
                **row,
                "batch_id": batch_id,
                "source_file": f"{batch_id}.data",
                "source_line": line,
                "file_sha256": batch_id,
                "loaded_at": loaded_at,
            }
            for line, row in enumerate(rows, start=1)
        ]
        audit = {
            "batch_id": batch_id,
            "source_kind": "csv" if table is SURVEY_RESPONSES else "firehose",
            "source_file": f"{batch_id}.data",
            "file_sha256": batch_id,
            "layout": "invistico" if table is SURVEY_RESPONSES else "firehose",
            "status": "loaded",
            "rows_in_file": len(rows),
            "rows_loaded": len(rows),
            "rows_quarantined": 0,
            "started_at": loaded_at,
            "finished_at": loaded_at,
        }
        out += [(table, landed), (LOAD_AUDIT, [audit])]
    return out


def expected(steps: list[list[Batch]]) -> tuple[dict[str, tuple], dict[tuple[str, str], Any]]:
    """Surveys (id -> channel, age, batch) and service ratings ((id, service) -> rating) after
    some steps: the first landed copy of each event, then the copy of each survey landed last."""
    copies = []
    for batches in steps:
        for table, batch_id, loaded_at, rows in batches:
            for line, row in enumerate(rows, start=1):
                channel = "batch" if table is SURVEY_RESPONSES else "stream"
                copies.append(((loaded_at, batch_id, line), channel, row))
    first_of_event: dict[str, tuple] = {}
    for copy in sorted(copies, key=lambda c: c[0]):
        event_id = copy[2].get("event_id")
        if event_id is not None:
            first_of_event.setdefault(event_id, copy)
    kept = [c for c in copies if "event_id" not in c[2]] + list(first_of_event.values())
    latest: dict[str, tuple] = {}
    for copy in sorted(kept, key=lambda c: c[0]):
        latest[copy[2]["survey_id"]] = copy
    surveys = {sid: (c[1], c[2]["age"], c[0][1]) for sid, c in latest.items()}
    ratings = {
        (sid, service): (None if c[2][service] == 0 else c[2][service])
        for sid, c in latest.items()
        for service in RATING_COLUMNS
        if c[2].get(service) is not None
    }
    return surveys, ratings


def actual(warehouse: Warehouse) -> tuple[dict[str, tuple], dict[tuple[str, str], Any]]:
    surveys = warehouse.query(
        "select survey_id, channel, age, batch_id from marts.fct_survey_responses"
    )
    ratings = warehouse.query("select survey_id, service, rating from marts.fct_service_ratings")
    survey_map = {r["survey_id"]: (r["channel"], r["age"], r["batch_id"]) for r in surveys}
    rating_map = {(r["survey_id"], r["service"]): r["rating"] for r in ratings}
    assert len(survey_map) == len(surveys) and len(rating_map) == len(ratings)
    return survey_map, rating_map


def snapshot(warehouse: Warehouse) -> dict[str, list[tuple]]:
    """Every row of every table the build writes to the marts and intermediate schemas."""
    tables = warehouse.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('marts', 'intermediate') and table_type = 'BASE TABLE'"
    )
    out = {}
    for t in tables:
        name = f"{t['table_schema']}.{t['table_name']}"
        rows = warehouse.query(f"select * from {name}")
        out[name] = sorted((tuple(r.items()) for r in rows), key=repr)
    return out


@dataclass(frozen=True)
class Project:
    """A scratch warehouse and the settings that point dbt at it."""

    settings: Settings
    target: str
    warehouse: Warehouse

    def dbt(self, command: str, *args: str) -> BuildResult:
        result = invoke_dbt(command, self.settings, target=self.target, extra=args)
        failures = [f"{o.unique_id}: {o.status} {o.message}" for o in result.failures]
        assert result.success, f"dbt {command} {' '.join(args)}: {failures}"
        return result


def status(result: BuildResult, unique_id: str) -> str:
    return next(o.status for o in result.outcomes if o.unique_id == unique_id)


def project(target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Project:
    settings = replace(Settings.from_env({}), data_dir=tmp_path / "data", **kw)
    for name, value in settings.dbt_env().items():  # invoke_dbt exports these; undo afterwards
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    if target == "duckdb":
        warehouse = Warehouse("duckdb", tmp_path, duckdb_path=settings.warehouse_path)
    else:
        warehouse = Warehouse("postgres", tmp_path, postgres=settings.postgres)
    settings.data_dir.mkdir(parents=True)
    return Project(settings, target, warehouse)


@pytest.fixture(params=["duckdb", "postgres"])
def scratch(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    if request.param == "duckdb":
        yield project("duckdb", tmp_path, monkeypatch)
    else:
        pg: PostgresSettings = request.getfixturevalue("pg_settings")
        yield project("postgres", tmp_path, monkeypatch, postgres=pg)


# What `contrail stream run` passes: data tests on incremental models check the window.
CYCLE_VARS = '{"stream_cycle": true}'


def test_incremental_steps_match_a_full_refresh(scratch: Project) -> None:
    warehouse = scratch.warehouse
    for n, batches in enumerate(STEPS):
        warehouse.load_raw(raw_rows(batches))
        if n == 0:  # seeds and models; the data tests run with the last step
            scratch.dbt("build", "--exclude", "resource_type:test", "resource_type:unit_test")
        elif n < len(STEPS) - 1:
            scratch.dbt("run", "--selector", "stream_cycle", "--vars", CYCLE_VARS)
        else:
            result = scratch.dbt("build", "--selector", "stream_cycle", "--vars", CYCLE_VARS)
            assert status(result, "model.contrail.fct_service_ratings") == "success"
            assert status(result, "test.contrail.assert_recent_surveys_reach_fct") == "pass"
            assert not [o for o in result.outcomes if "assert_rows_reconcile" in o.unique_id], (
                "the whole-table reconciliation is for full builds only"
            )
        assert actual(warehouse) == expected(STEPS[: n + 1]), f"after step {n}"

    surveys, ratings = actual(warehouse)
    # spot checks of the cases, by hand
    assert surveys["B1"] == ("batch", 61, "csv-b")  # the batch copy landed last wins
    assert surveys["S1"] == ("stream", 40, "firehose-1")  # the redelivery does not
    assert surveys["S2"] == ("stream", 42, "firehose-2")  # the late event is there
    assert surveys["B3"] == ("stream", 52, "firehose-3")  # landed before the newest object
    assert not [key for key in ratings if key[0] == "B2"]  # the newer copy asks nothing
    assert sorted(s for (sid, s) in ratings if sid == "B4") == sorted(FEW_RATINGS)

    incremental = snapshot(warehouse)
    assert "marts.fct_survey_responses" in incremental
    assert "intermediate.int_surveys__deduplicated" in incremental
    scratch.dbt("run", "--full-refresh")
    rebuilt = snapshot(warehouse)
    assert rebuilt.keys() == incremental.keys()
    differing = [name for name in incremental if incremental[name] != rebuilt[name]]
    assert differing == []
    result = scratch.dbt("test", "--select", "assert_rows_reconcile_raw_to_fct")
    assert status(result, "test.contrail.assert_rows_reconcile_raw_to_fct") == "pass"


def test_lookback_window_bounds_what_an_incremental_run_reprocesses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = project("duckdb", tmp_path, monkeypatch)
    newest = T0 + timedelta(hours=5)
    first: list[Batch] = [
        (SURVEY_RESPONSES, "csv-a", T0, [batch_row("B1", 30, ALL_RATINGS)]),
        (SURVEY_EVENTS, "firehose-1", newest, [event_row("e1", "S1", 40, {}, newest)]),
    ]
    scratch.warehouse.load_raw(raw_rows(first))
    chain = "+fct_survey_responses"
    scratch.dbt("run", "--select", chain)
    # two objects that committed after that run but landed before its newest row
    late: list[Batch] = [
        (
            SURVEY_EVENTS,
            "firehose-0a",
            newest - timedelta(minutes=59),
            [event_row("e2", "INSIDE", 41, ALL_RATINGS, T0)],
        ),
        (
            SURVEY_EVENTS,
            "firehose-0b",
            newest - timedelta(minutes=61),
            [event_row("e3", "OUTSIDE", 42, ALL_RATINGS, T0)],
        ),
    ]
    scratch.warehouse.load_raw(raw_rows(late))
    scratch.dbt("run", "--select", chain)  # lookback_minutes defaults to 60
    surveys = scratch.warehouse.query("select survey_id from marts.fct_survey_responses")
    assert {r["survey_id"] for r in surveys} == {"B1", "S1", "INSIDE"}
    scratch.dbt("run", "--select", chain, "--vars", "{lookback_minutes: 62}")
    surveys = scratch.warehouse.query("select survey_id, age from marts.fct_survey_responses")
    expected_surveys = expected([first, late])[0]
    assert {r["survey_id"]: r["age"] for r in surveys} == {
        sid: age for sid, (_, age, _) in expected_surveys.items()
    }


def built_with_an_old_batch_and_a_newer_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Project, datetime]:
    """A built project (no tests run): batch surveys B1 and B2 landed at T0, and the event of
    survey S1, which asks about no service, landed five hours later (returned as newest)."""
    scratch = project("duckdb", tmp_path, monkeypatch)
    newest = T0 + timedelta(hours=5)
    batches: list[Batch] = [
        (SURVEY_RESPONSES, "csv-a", T0, [batch_row(f"B{n}", 30 + n, ALL_RATINGS) for n in (1, 2)]),
        (SURVEY_EVENTS, "firehose-1", newest, [event_row("e1", "S1", 40, {}, newest)]),
    ]
    scratch.warehouse.load_raw(raw_rows(batches))
    scratch.dbt("build", "--exclude", "resource_type:test", "resource_type:unit_test")
    return scratch, newest


def test_cycle_tests_check_the_window_and_still_catch_repeated_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With var stream_cycle, row-by-row tests read the lookback window only, and `unique`
    still fails when a row in the window repeats the key of a row outside it."""
    scratch, newest = built_with_an_old_batch_and_a_newer_event(tmp_path, monkeypatch)
    fct = "marts.fct_survey_responses"
    conn = scratch.warehouse.connect()
    try:
        # An old row (landed 5 hours before the newest) breaks a row-by-row rule.
        conn.execute(f"update {fct} set channel = null where survey_id = 'B1'")
    finally:
        conn.close()

    def run_tests(*args: str) -> dict[str, str]:
        result = invoke_dbt(
            "test", scratch.settings, extra=["--select", "fct_survey_responses", *args]
        )
        return {o.unique_id.split(".")[2]: o.status for o in result.outcomes}

    cycle = run_tests("--vars", CYCLE_VARS)
    full = run_tests()
    not_null_channel = "not_null_fct_survey_responses_channel"
    assert cycle[not_null_channel] == "pass", "the broken row lies outside the window"
    assert full[not_null_channel] == "fail"

    conn = scratch.warehouse.connect()
    try:
        # A row in the window that repeats the key of the old row B2.
        conn.execute(
            f"insert into {fct} select * replace ('{newest}'::timestamp as loaded_at) "
            f"from {fct} where survey_id = 'B2'"
        )
    finally:
        conn.close()
    cycle = run_tests("--vars", CYCLE_VARS)
    assert cycle["unique_fct_survey_responses_survey_id"] == "fail"


def test_cycle_relationships_read_the_parents_window_and_still_fail_on_a_missing_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a cycle, a relationships test to a windowed model reads the parent from the tested
    rows' cutoff on; a row in the window whose parent is gone still fails it."""
    scratch = project("duckdb", tmp_path, monkeypatch)
    newest = T0 + timedelta(hours=5)
    batches: list[Batch] = [
        (SURVEY_RESPONSES, "csv-a", T0, [batch_row("B1", 31, ALL_RATINGS)]),
        (SURVEY_EVENTS, "firehose-1", newest, [event_row("e1", "S1", 40, ALL_RATINGS, newest)]),
    ]
    scratch.warehouse.load_raw(raw_rows(batches))
    scratch.dbt("build", "--exclude", "resource_type:test", "resource_type:unit_test")
    test_name = (
        "relationships_fct_survey_responses_passenger_key__passenger_key__ref_dim_passenger_"
    )

    def run_test() -> str:
        result = invoke_dbt(
            "test",
            scratch.settings,
            extra=["--select", f"{test_name}*", "--vars", CYCLE_VARS],
        )
        (outcome,) = result.outcomes
        return outcome.status

    assert run_test() == "pass"
    (compiled,) = [  # dbt shortens a long test's file name
        path.read_text()
        for path in (scratch.settings.dbt_target_dir / "run").rglob("relationships_*.sql")
        if '"dim_passenger"' in path.read_text()
    ]
    # the parent is read from the window's cutoff (the newest landing, 60 minutes back)
    cutoff = newest - timedelta(minutes=60)
    assert f"last_loaded_at >= cast('{cutoff}' as timestamp)" in compiled

    conn = scratch.warehouse.connect()
    try:
        conn.execute(
            "delete from marts.dim_passenger where passenger_key = "
            "(select passenger_key from marts.fct_survey_responses where survey_id = 'S1')"
        )
    finally:
        conn.close()
    assert run_test() == "fail"


def test_cycle_tests_of_the_ratings_view_are_windowed_from_the_surveys_newest_landing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fct_service_ratings is a view; in a cycle its tests read the ratings of the surveys in
    the window anchored at int_surveys__deduplicated's newest landing time (here a survey that
    asks about no service, so the view's own newest rating is five hours older)."""
    scratch, newest = built_with_an_old_batch_and_a_newer_event(tmp_path, monkeypatch)
    deduplicated = "intermediate.int_surveys__deduplicated"
    conn = scratch.warehouse.connect()
    try:
        # B1 (landed five hours before the newest survey) gets an impossible score
        conn.execute(f"update {deduplicated} set seat_comfort_rating = 9 where survey_id = 'B1'")
        ratings = conn.execute("select max(loaded_at) from marts.fct_service_ratings").fetchone()[0]
    finally:
        conn.close()
    assert ratings == T0  # S1 has no ratings: anchored at the view, B1 would be in the window

    def range_test(*args: str) -> str:
        result = invoke_dbt(
            "test",
            scratch.settings,
            extra=["--select", "accepted_range_fct_service_ratings_rating*", *args],
        )
        (outcome,) = result.outcomes
        return outcome.status

    assert range_test("--vars", CYCLE_VARS) == "pass", "B1 lies outside the window"
    assert range_test() == "fail"

    conn = scratch.warehouse.connect()
    try:
        conn.execute(
            f"update {deduplicated} set loaded_at = '{newest}'::timestamp where survey_id = 'B1'"
        )
    finally:
        conn.close()
    assert range_test("--vars", CYCLE_VARS) == "fail", "B1 landed again: inside the window"
