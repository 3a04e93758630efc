"""The same loads on PostgreSQL: rows, quarantine, circuit breaker, idempotency."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingestion.config import PostgresSettings, Settings
from ingestion.errors import ContrailError
from ingestion.layouts import INVISTICO_HEADER, PASSENGER_SATISFACTION_HEADER
from ingestion.load_csv import load_csv
from ingestion.warehouse import connect_postgres
from tests.ingestion.test_load_csv import HEADER, good_lines, good_row, line, write

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(settings: Settings, pg_settings: PostgresSettings) -> Settings:
    return replace(settings, postgres=pg_settings)


def query(settings: Settings, sql: str) -> list[tuple]:
    conn = connect_postgres(settings.postgres)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_loads_rows_quarantine_and_audit(tmp_path: Path, pg: Settings) -> None:
    rows = good_lines(80)
    bad_age = good_row(5)
    bad_age[3] = "abc"
    invalid = line(good_row(6)).encode() + b"\xff\x00"
    path = write(tmp_path / "s.csv", [HEADER, *rows[:3], line(bad_age), invalid, *rows[3:], ""])
    result = load_csv(path, pg, target="postgres")

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (result.status, result.rows_in_file, result.rows_loaded) == ("loaded", 83, 80)
    assert result.quarantined_by_reason == {
        "blank_line": 1,
        "invalid_utf8": 1,
        "not_an_integer": 1,
    }
    landed = query(
        pg,
        "select source_line, age, travel_class, arrival_delay_minutes, inflight_service, "
        "file_sha256, survey_id is not null, loaded_at is not null "
        "from raw.survey_responses order by source_line",
    )
    expected = []
    for n, text in zip([*range(2, 5), *range(7, 84)], rows, strict=True):
        values = text.split(",")
        arrival = int(values[22]) if values[22] else None
        expected.append((n, int(values[3]), values[5], arrival, None, sha, True, True))
    assert landed == expected
    quarantine = query(
        pg, "select source_line, reason, detail, raw_text from raw.quarantine order by 1"
    )
    invalid_text = invalid.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
    assert quarantine == [
        (5, "not_an_integer", 'line 5: column "Age" = "abc" is not an integer', line(bad_age)),
        (6, "invalid_utf8", quarantine[1][2], invalid_text),
        (84, "blank_line", "line 84: blank line", ""),
    ]
    assert quarantine[1][2].startswith("line 6: invalid UTF-8 byte 0xff")
    assert query(pg, "select status, rows_loaded, rows_quarantined from raw.load_audit") == [
        ("loaded", 80, 3)
    ]


def test_enrichment_matches_duckdb(tmp_path: Path, pg: Settings, settings: Settings) -> None:
    path = write(tmp_path / "s.csv", [HEADER, *good_lines(50)])
    load_csv(path, pg, target="postgres")
    load_csv(path, settings)

    sql = (
        "select source_line, survey_id, flight_id, flight_date, actual_arrival_at "
        "from raw.survey_responses order by 1"
    )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        expected = conn.execute(sql).fetchall()
    assert query(pg, sql) == expected


def test_passenger_satisfaction_nulls(tmp_path: Path, pg: Settings) -> None:
    rows = []
    for i in range(30):
        values = dict(zip(INVISTICO_HEADER, good_row(i), strict=True))
        values.update({"": str(i), "id": str(i), "Inflight service": "3"})
        values["Arrival Delay in Minutes"] = f"{i}.0"
        rows.append(line([values[h] for h in PASSENGER_SATISFACTION_HEADER]))
    path = write(tmp_path / "test.csv", [",".join(PASSENGER_SATISFACTION_HEADER), *rows])
    result = load_csv(path, pg, target="postgres")
    assert result.rows_loaded == 30
    assert query(
        pg,
        "select count(online_support), sum(inflight_service), sum(arrival_delay_minutes) "
        "from raw.survey_responses",
    ) == [(0, 90, sum(range(30)))]


def test_circuit_breaker_then_idempotency(tmp_path: Path, pg: Settings) -> None:
    rows = good_lines(20)
    path = write(tmp_path / "s.csv", [HEADER, *rows[:10], "", "", *rows[10:]])
    with pytest.raises(ContrailError, match=r"2 of 22 rows are bad.*blank_line 2"):
        load_csv(path, pg, target="postgres")
    assert query(pg, "select count(*) from raw.survey_responses") == [(0,)]
    assert query(pg, "select count(*) from raw.quarantine") == [(0,)]
    assert query(pg, "select status from raw.load_audit") == [("rejected",)]

    lenient = replace(pg, max_bad_share=0.1)
    assert load_csv(path, lenient, target="postgres").status == "loaded"
    assert load_csv(path, lenient, target="postgres").status == "skipped_duplicate"
    forced = load_csv(path, lenient, target="postgres", force=True)
    assert (forced.status, forced.rows_loaded, forced.rows_quarantined) == ("replaced", 20, 2)
    assert query(pg, "select count(*) from raw.survey_responses") == [(20,)]
    assert query(pg, "select count(*) from raw.quarantine") == [(2,)]
    assert query(pg, "select status from raw.load_audit") == [("replaced",)]
