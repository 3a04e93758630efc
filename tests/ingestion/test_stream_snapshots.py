"""A long stream run patches its snapshots, and after every cycle the snapshot readers open
holds exactly what the warehouse holds (the real loader and dbt, in-process, on DuckDB)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ingestion.config import Settings
from ingestion.events import envelope
from ingestion.firehose import LocalDirectory
from ingestion.stream import CycleResult, run_stream
from ingestion.warehouse import connect_duckdb

SURVEY: dict[str, Any] = {
    "satisfaction": "satisfied",
    "gender": "Female",
    "customer_type": "Loyal Customer",
    "type_of_travel": "Business travel",
    "travel_class": "Eco",
    "flight_distance": 900,
    "seat_comfort": 5,
    "food_and_drink": 3,
    "departure_delay_minutes": 0,
    "arrival_delay_minutes": 0,
}


def _event(event_id: str, survey_id: str, **survey: Any) -> bytes:
    body = {**SURVEY, "survey_id": survey_id, "age": 30, **survey}
    submitted = datetime.now(UTC).replace(tzinfo=None)
    return json.dumps(envelope(body, event_id=event_id, submitted_at=submitted)).encode()


# What arrives before each cycle; the run's fifth cycle finds nothing new.
ARRIVALS: list[list[bytes]] = [
    [_event(f"e1-{n}", f"SRV-S{n:04d}") for n in range(40)],
    [_event(f"e2-{n}", f"SRV-S{n:04d}") for n in range(40, 60)],
    # a new copy of an early survey: another passenger, other answers
    [
        *(_event(f"e3-{n}", f"SRV-S{n:04d}") for n in range(60, 70)),
        _event("e3-again", "SRV-S0003", customer_id="CUST-NEW", seat_comfort=1, age=71),
    ],
    # a new copy that answers no service at all: its older ratings must go
    [
        _event(
            "e4-again",
            "SRV-S0005",
            seat_comfort=None,
            food_and_drink=None,
            satisfaction="neutral or dissatisfied",
        ),
        *(_event(f"e4-{n}", f"SRV-S{n:04d}") for n in range(70, 75)),
    ],
]


@dataclass
class Run:
    settings: Settings
    cycles: list[CycleResult]
    differences: list[dict[str, tuple[int, int]]]  # per cycle: relation -> rows only on one side
    warnings: list[str]


def _differences(settings: Settings, recorded: bool) -> dict[str, tuple[int, int]]:
    """Relations whose rows differ between the warehouse and the published snapshot.

    ``recorded``: the cycle wrote its row to raw.stream_cycles after the publish.
    """
    conn = connect_duckdb(settings.warehouse_path)  # the runner's own database instance
    try:
        conn.execute(f"attach '{settings.serving_path}' as served (read_only)")
        try:
            relations = conn.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = current_database() "
                "union all select schema_name, view_name from duckdb_views() "
                "where database_name = current_database() and not internal"
            ).fetchall()
            served = {
                (s, n)
                for s, n in conn.execute(
                    "select schema_name, table_name from duckdb_tables() "
                    "where database_name = 'served' and schema_name <> 'contrail_meta' "
                    "union all select schema_name, view_name from duckdb_views() "
                    "where database_name = 'served' and not internal"
                ).fetchall()
            }
            out: dict[str, tuple[int, int]] = {}
            if served != set(relations):
                out["relations"] = (len(set(relations) - served), len(served - set(relations)))
            for schema, name in relations:
                if (schema, name) not in served:
                    continue
                ours = f"{schema}.{name}"
                theirs = f"served.{schema}.{name}"
                if recorded and name in ("stream_cycles", "stg_raw__stream_cycles"):
                    # the cycle is recorded after its publish: the snapshot has all but it
                    ours = (
                        f"(select * from {ours} order by started_at "
                        f"limit (select count(*) - 1 from {ours}))"
                    )
                only_ours = conn.execute(
                    f"select count(*) from (select * from {ours} except all select * from {theirs})"
                ).fetchone()[0]
                only_theirs = conn.execute(
                    f"select count(*) from (select * from {theirs} except all select * from {ours})"
                ).fetchone()[0]
                if only_ours or only_theirs:
                    out[f"{schema}.{name}"] = (only_ours, only_theirs)
            return out
        finally:
            conn.execute("detach served")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    settings = replace(Settings.from_env({}), data_dir=tmp_path_factory.mktemp("slots") / "d")
    landing = LocalDirectory.for_settings(settings)
    differences: list[dict[str, tuple[int, int]]] = []
    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                warnings.append(record.getMessage())

    def arrive(n: int) -> None:
        if n < len(ARRIVALS):
            landing.put_object(f"2026/03/01/20/slots-{n}", b"".join(ARRIVALS[n]))

    def after(cycle: CycleResult) -> None:
        differences.append(_differences(settings, cycle.recorded))
        arrive(len(differences))

    handler = Collect()
    logger = logging.getLogger("ingestion")
    logger.addHandler(handler)
    try:
        arrive(0)
        cycles = run_stream(settings, interval_s=0, max_cycles=5, on_cycle=after)
    finally:
        logger.removeHandler(handler)
    yield Run(settings, cycles, differences, warnings)


@pytest.mark.slow
def test_the_run_copies_twice_then_patches(run: Run) -> None:
    assert [c.build for c in run.cycles] == ["full", "stream", "stream", "stream", "health"]
    assert [c.snapshot_patched for c in run.cycles] == [False, False, True, True, True]


@pytest.mark.slow
def test_after_every_cycle_the_snapshot_equals_the_warehouse(run: Run) -> None:
    assert run.differences == [{}] * 5


@pytest.mark.slow
def test_a_survey_that_lost_its_ratings_has_none_in_the_snapshot(run: Run) -> None:
    # the fourth cycle lands a copy of SRV-S0005 that asks about no service; the ratings are a
    # view over the surveys, so the patched snapshot has none left, and every delta reconciled
    assert run.warnings == []
    conn = connect_duckdb(run.settings.serving_path, read_only=True)
    try:
        ratings = conn.execute(
            "select count(*) from marts.fct_service_ratings where survey_id = 'SRV-S0005'"
        ).fetchone()[0]
        passenger = conn.execute(
            "select age, seat_comfort_rating from marts.fct_survey_responses "
            "where survey_id = 'SRV-S0003'"
        ).fetchone()
        surveys = conn.execute("select count(*) from marts.fct_survey_responses").fetchone()[0]
    finally:
        conn.close()
    assert ratings == 0
    assert passenger == (71, 1)
    assert surveys == 75
