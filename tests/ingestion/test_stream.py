"""The micro-batch runner: orphaned journals, warm dbt, cycles, freshness and pipeline health.

The cycle tests run the real loader and dbt in-process on a scratch DuckDB warehouse (and on
PostgreSQL); every expected value is computed here from the events the test wrote.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingestion.config import PostgresSettings, Settings
from ingestion.events import envelope
from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory
from ingestion.stream import (
    Freshness,
    WarmDbt,
    flush_orphaned_journals,
    journal_is_locked,
    remove_stale_publish_files,
    run_stream,
)
from ingestion.warehouse import connect_duckdb, connect_postgres

SURVEY: dict[str, Any] = {
    "satisfaction": "satisfied",
    "gender": "Female",
    "customer_type": "Loyal Customer",
    "age": 40,
    "type_of_travel": "Business travel",
    "travel_class": "Eco Plus",
    "flight_distance": 1500,
    "seat_comfort": 4,
    "food_and_drink": 0,
    "departure_delay_minutes": 3,
    "arrival_delay_minutes": 0,
}
KEY = "2026/03/01/20/contrail-surveys-1-2026-03-01-20-00-00-{}"


def naive_utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def make_event(n: int, submitted_at: datetime, **survey: Any) -> dict[str, Any]:
    body = {**SURVEY, "survey_id": f"SRV-T{n:06d}", "age": 20 + n % 60, **survey}
    return envelope(body, event_id=f"evt-{n:06d}", submitted_at=submitted_at)


def encode(events: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def orphan_journal(settings: Settings, name: str, records: list[bytes]) -> Path:
    """A journal holding ``records`` whose buffer went away without delivering them."""
    journal = settings.data_dir / "journal" / name
    buffer = DeliveryBuffer(
        LocalDirectory.for_settings(settings),
        DeliveryConfig(buffer_interval_s=3600),
        journal_dir=journal,
    )
    buffer.add(records)
    buffer.close()
    return journal


def delivered_records(settings: Settings) -> list[bytes]:
    landing = LocalDirectory.for_settings(settings)
    out: list[bytes] = []
    for key in landing.list_keys():
        body = landing.get_object(key)
        out += [r for r in body.replace(b"}{", b"}\n{").split(b"\n") if r]
    return out


# --- pieces without dbt ----------------------------------------------------------------------


def test_freshness_percentiles_over_the_published_events() -> None:
    published = datetime(2026, 3, 1, 12, 0, 10)
    ages = [1.0, 2.0, 3.0, 4.0, 10.0]
    submitted = np.array([published.replace(tzinfo=UTC).timestamp() - a for a in ages])
    got = Freshness.of(submitted, published)
    # p50 of 5 sorted values is the middle one; p95 interpolates between the 4th and 5th
    # (rank 0.95 * 4 = 3.8): 4 + 0.8 * (10 - 4)
    assert got.events == 5
    assert got.p50_s == pytest.approx(3.0)
    assert got.p95_s == pytest.approx(8.8)
    assert got.max_s == pytest.approx(10.0)
    assert Freshness.of(np.array([]), published) == Freshness(0, None, None, None)


def test_journal_lock_is_seen_while_its_buffer_lives(settings: Settings) -> None:
    journal = settings.data_dir / "journal" / "api"
    assert not journal_is_locked(journal)  # no journal at all
    buffer = DeliveryBuffer(
        LocalDirectory.for_settings(settings), DeliveryConfig(), journal_dir=journal
    )
    assert journal_is_locked(journal)
    buffer.close()
    assert not journal_is_locked(journal)


def test_orphaned_journals_are_delivered_and_live_ones_left_alone(settings: Settings) -> None:
    at = naive_utc_now()
    orphan = encode([make_event(n, at) for n in range(7)])
    orphan_journal(settings, "crashed-api", orphan)
    orphan_journal(settings, "empty", [])  # a journal with no segments
    live_records = encode([make_event(n, at) for n in range(100, 103)])
    live = DeliveryBuffer(
        LocalDirectory.for_settings(settings),
        DeliveryConfig(buffer_interval_s=3600),
        journal_dir=settings.data_dir / "journal" / "live-api",
    )
    try:
        live.add(live_records)
        report = flush_orphaned_journals(settings)
        assert report.journals == 1
        assert report.live == (settings.data_dir / "journal" / "live-api",)
        assert sorted(delivered_records(settings)) == sorted(orphan)
        assert live.buffered_records == 3  # untouched: its owner delivers it
        # delivered once: a second pass finds nothing left in the orphaned journal
        assert flush_orphaned_journals(settings).keys == ()
    finally:
        live.close()


def test_stale_publish_copies_of_dead_processes_are_removed(settings: Settings) -> None:
    serving = settings.serving_path
    serving.parent.mkdir(parents=True)
    dead_pid = 2**22 + 17  # above the usual pid_max; the loop makes sure it is unused
    while True:
        try:
            os.kill(dead_pid, 0)
        except ProcessLookupError:
            break
        dead_pid += 1
    dead = serving.with_name(f".{serving.name}.{dead_pid}.tmp")
    mine = serving.with_name(f".{serving.name}.{os.getpid()}.tmp")
    other = serving.with_name("notes.txt")
    for path in (dead, mine, other):
        path.write_bytes(b"x")
    assert remove_stale_publish_files(settings) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()


def test_the_manifest_fingerprint_follows_project_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "dbt_project" / "models").mkdir(parents=True)
    (repo / "dbt_project.yml").write_text("name: x\n")
    model = repo / "dbt_project" / "models" / "m.sql"
    model.write_text("select 1 as a\n")
    settings = Settings(data_dir=tmp_path / "data", repo_root=repo)
    dbt = WarmDbt(settings, "duckdb")
    first = dbt.fingerprint()
    assert dbt.fingerprint() == first
    model.write_text("select 1 as a, 2 as b\n")
    assert dbt.fingerprint() != first
    # another data directory (same warehouse file name) keeps the manifest valid
    elsewhere = WarmDbt(replace(settings, data_dir=tmp_path / "other"), "duckdb")
    assert elsewhere.fingerprint() == dbt.fingerprint()
    assert WarmDbt(settings, "postgres").fingerprint() != dbt.fingerprint()


def test_sigterm_stops_the_loop_after_the_step_in_progress(settings: Settings) -> None:
    steps: list[str] = []

    def on_step(name: str) -> None:
        steps.append(name)
        if name == "load":
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    results = run_stream(settings, interval_s=0, on_step=on_step)
    assert steps == ["flush", "load"]  # the load ran to its end, then the loop stopped
    assert [r.interrupted for r in results] == [True]
    assert results[0].build == "none" and results[0].published_at is None
    assert signal.getsignal(signal.SIGTERM) is before  # the handler was restored


def test_a_stop_event_ends_the_loop_between_cycles(settings: Settings) -> None:
    stop = threading.Event()
    seen: list[str] = []

    def on_step(name: str) -> None:
        seen.append(name)
        if name == "flush" and seen.count("flush") == 1:
            stop.set()

    results = run_stream(settings, interval_s=60, stop=stop, on_step=on_step)
    assert len(results) == 1 and results[0].interrupted
    assert seen == ["flush"]


# --- whole cycles on DuckDB --------------------------------------------------------------------


@dataclass
class Scenario:
    settings: Settings
    events: dict[str, dict[str, Any]]  # event_id -> envelope, every event that must land
    live_events: list[dict[str, Any]]  # held by a live buffer: must not land
    objects: dict[str, tuple[int, int, dict[str, int]]]  # key -> records, good, bad by reason
    first: list[Any]
    second: list[Any]


def query(path: Path, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts; the snapshot is opened read-only, the warehouse as dbt has it open."""
    conn = connect_duckdb(path, read_only=path.parent.name == "serving")
    try:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    settings = replace(Settings.from_env({}), data_dir=tmp_path_factory.mktemp("stream") / "d")
    now = naive_utc_now()
    events: dict[str, dict[str, Any]] = {}
    landing = LocalDirectory.for_settings(settings)

    # 1. an orphaned journal (an API killed before delivering), submitted 30-59 s ago
    orphaned = [make_event(n, now - timedelta(seconds=30 + n)) for n in range(30)]
    orphan_journal(settings, "api", encode(orphaned))
    events.update({e["event_id"]: e for e in orphaned})

    # 2. a delivered object with two bad records among 20 good ones, submitted 5-24 s ago
    good = [make_event(n, now - timedelta(seconds=5 + n - 100)) for n in range(100, 120)]
    bad_schema = json.dumps(make_event(900, now, age=300)).encode()
    truncated = json.dumps(make_event(901, now)).encode()[:40]
    body = b"".join(encode(good[:10])) + bad_schema + b"".join(encode(good[10:]))
    body += b"\n" + truncated
    key_b = KEY.format("b")
    landing.put_object(key_b, body)
    events.update({e["event_id"]: e for e in good})

    # 3. a live buffer (an API still running): its records are its own to deliver
    live_events = [make_event(n, now) for n in range(500, 505)]
    live = DeliveryBuffer(
        landing,
        DeliveryConfig(buffer_interval_s=3600),
        journal_dir=settings.data_dir / "journal" / "live",
    )
    live.add(encode(live_events))
    try:
        first = run_stream(settings, once=True)
        # 4. more surveys arrive: one object, including a redelivered copy of an event
        later = [make_event(n, naive_utc_now()) for n in range(200, 210)]
        key_c = KEY.format("c")
        landing.put_object(key_c, b"".join(encode([*later, good[0]])))
        events.update({e["event_id"]: e for e in later})
        second = run_stream(settings, interval_s=0, max_cycles=2)
    finally:
        live.close()
    (key_a,) = [k for k in landing.list_keys() if k not in (key_b, key_c)]
    objects = {
        key_a: (30, 30, {}),
        key_b: (22, 20, {"schema_violation": 1, "truncated_json": 1}),
        key_c: (11, 11, {}),
    }
    yield Scenario(settings, events, live_events, objects, first, second)


def test_one_cycle_flushes_loads_builds_and_publishes(scenario: Scenario) -> None:
    (cycle,) = scenario.first
    assert (cycle.journals_flushed, cycle.objects_flushed) == (1, 1)
    assert (cycle.objects_loaded, cycle.records_loaded, cycle.records_quarantined) == (2, 50, 2)
    assert cycle.build == "full"  # a fresh warehouse gets every model
    assert cycle.recorded and not cycle.interrupted
    assert cycle.published_at is not None
    assert scenario.settings.serving_path.exists()


def test_later_cycles_reuse_the_manifest_and_refresh_health_when_idle(scenario: Scenario) -> None:
    busy, idle = scenario.second
    assert (busy.build, busy.parsed, busy.objects_loaded, busy.records_loaded) == (
        "stream",
        False,
        1,
        11,
    )
    assert busy.recorded
    # nothing new: the idle cycle rebuilds only pipeline health, to show the busy cycle's row
    assert (idle.build, idle.objects_loaded, idle.recorded) == ("health", 0, False)
    assert idle.published_at is not None


def test_the_snapshot_holds_every_survey_once(scenario: Scenario) -> None:
    rows = query(
        scenario.settings.serving_path,
        "select survey_id, age, travel_class from marts.fct_survey_responses",
    )
    expected = {e["survey"]["survey_id"]: e["survey"]["age"] for e in scenario.events.values()}
    assert len(rows) == len(expected)
    assert {r["survey_id"]: r["age"] for r in rows} == expected
    live_ids = {e["survey"]["survey_id"] for e in scenario.live_events}
    assert live_ids.isdisjoint(r["survey_id"] for r in rows)


def expected_freshness(events: list[dict[str, Any]], published_at: datetime) -> tuple[float, ...]:
    ages = sorted(
        (published_at - datetime.fromisoformat(e["submitted_at"])).total_seconds() for e in events
    )
    n = len(ages)

    def quantile(q: float) -> float:
        rank = q * (n - 1)
        low = int(rank)
        high = min(low + 1, n - 1)
        return ages[low] + (rank - low) * (ages[high] - ages[low])

    return quantile(0.5), quantile(0.95), ages[-1]


def test_each_cycle_records_what_it_published_and_its_freshness(scenario: Scenario) -> None:
    cycles = query(
        scenario.settings.warehouse_path, "select * from raw.stream_cycles order by started_at"
    )
    assert [c["cycle_id"] for c in cycles] == [
        scenario.first[0].cycle_id,
        scenario.second[0].cycle_id,
    ]
    by_id = {e["event_id"]: e for e in scenario.events.values()}
    first_events = [e for i, e in by_id.items() if not i.startswith("evt-0002")]
    # the second cycle published object c: ten new events and one redelivered copy
    second_events = [e for i, e in by_id.items() if i.startswith("evt-0002")]
    second_events.append(by_id["evt-000100"])
    for row, published in ((cycles[0], first_events), (cycles[1], second_events)):
        assert row["events_loaded"] == len(published)
        p50, p95, worst = expected_freshness(published, row["published_at"])
        assert row["freshness_p50_s"] == pytest.approx(p50, abs=1e-3)
        assert row["freshness_p95_s"] == pytest.approx(p95, abs=1e-3)
        assert row["freshness_max_s"] == pytest.approx(worst, abs=1e-3)
        assert row["build_s"] > 0 and row["cycle_s"] >= row["build_s"] + row["publish_s"]
    assert (cycles[0]["objects_loaded"], cycles[0]["events_quarantined"]) == (2, 2)
    assert (cycles[1]["objects_loaded"], cycles[1]["events_quarantined"]) == (1, 0)


def test_pipeline_health_has_stream_loads_and_cycles(scenario: Scenario) -> None:
    health = query(scenario.settings.serving_path, "select * from marts.mart_pipeline_health")
    loads = {r["source_file"]: r for r in health if r["row_kind"] == "load"}
    assert set(loads) == set(scenario.objects)
    landed = {
        r["batch_id"]: r
        for r in query(
            scenario.settings.warehouse_path,
            "select batch_id, max(loaded_at) as loaded_at, max(submitted_at) as newest "
            "from raw.survey_events group by batch_id",
        )
    }
    for key, (records, good, reasons) in scenario.objects.items():
        row = loads[key]
        assert (row["source_kind"], row["rows_in_file"]) == ("firehose", records)
        assert row["rows_landed"] == row["rows_loaded"] == good
        assert row["rows_in_quarantine"] == records - good
        for reason in ("truncated_json", "wrong_envelope", "schema_violation", "corrupt_gzip"):
            assert row[f"quarantined_{reason}"] == reasons.get(reason, 0), (key, reason)
        assert row["quarantined_other_reason"] == 0
        raw = landed[row["batch_id"]]
        assert row["newest_survey_submitted_at"] == raw["newest"]
        # datediff counts the second boundaries crossed, as on every engine dbt supports
        whole = raw["loaded_at"].replace(microsecond=0) - raw["newest"].replace(microsecond=0)
        assert row["freshness_seconds"] == int(whole.total_seconds())
        assert row["cycle_id"] is None and row["freshness_p50_s"] is None
    cycles = sorted((r for r in health if r["row_kind"] == "cycle"), key=lambda r: r["started_at"])
    raw_cycles = query(
        scenario.settings.warehouse_path, "select * from raw.stream_cycles order by started_at"
    )
    assert len(cycles) == len(raw_cycles) == 2
    for row, raw_row in zip(cycles, raw_cycles, strict=True):
        assert row["batch_id"] is None and row["rows_landed"] is None
        assert row["finished_at"] == row["published_at"] == raw_row["published_at"]
        for column in ("cycle_id", "events_loaded", "freshness_p95_s", "cycle_s"):
            assert row[column] == raw_row[column]


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_cycle_on_postgres(settings: Settings, pg_settings: PostgresSettings) -> None:
    settings = replace(settings, postgres=pg_settings)
    now = naive_utc_now()
    events = [make_event(n, now - timedelta(seconds=n)) for n in range(12)]
    LocalDirectory.for_settings(settings).put_object(KEY.format("pg"), b"".join(encode(events)))
    (cycle,) = run_stream(settings, once=True, target="postgres")
    assert (cycle.build, cycle.records_loaded, cycle.recorded) == ("full", 12, True)
    assert not settings.serving_path.exists()  # nothing to publish on PostgreSQL
    conn = connect_postgres(pg_settings)
    try:
        with conn.cursor() as cur:
            cur.execute("select survey_id from marts.fct_survey_responses")
            assert sorted(r[0] for r in cur.fetchall()) == sorted(
                e["survey"]["survey_id"] for e in events
            )
            cur.execute(
                "select events_loaded, freshness_max_s, published_at from raw.stream_cycles"
            )
            ((loaded, worst, published_at),) = cur.fetchall()
    finally:
        conn.close()
    assert loaded == 12
    assert worst == pytest.approx(
        (published_at - (now - timedelta(seconds=11))).total_seconds(), abs=1e-3
    )
