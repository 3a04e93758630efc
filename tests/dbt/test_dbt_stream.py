"""The stream path through dbt, on DuckDB and PostgreSQL: delivery objects landed by the real
loader next to hand-made batch rows, then `dbt build`.

The objects hold an event delivered twice (in two objects), a survey posted twice as two
events, a quarantined record and a corrupt gzip object; the batch rows share two survey ids
with the stream, one loaded before the stream and one "after" it. Every expected value is
computed here from these inputs.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from ingestion.config import PostgresSettings, Settings
from ingestion.events import envelope
from ingestion.load_firehose import load_firehose
from ingestion.schema import LOAD_AUDIT, SURVEY_RESPONSES

from .conftest import Warehouse

pytestmark = pytest.mark.slow

SUBMITTED = datetime(2026, 3, 1, 20, 0)
SURVEY: dict[str, Any] = {
    "satisfaction": "satisfied",
    "gender": "Female",
    "customer_type": "Loyal Customer",
    "type_of_travel": "Business travel",
    "travel_class": "Eco",
    "flight_distance": 900,
    "seat_comfort": 3,
    "departure_delay_minutes": 0,
    "arrival_delay_minutes": 0,
}
EARLY = datetime(2026, 3, 2)  # batch copy loaded before any stream load
LATE = datetime(2100, 1, 1)  # batch copy "loaded" after every stream load


def record(event_id: str, survey_id: str, age: int) -> bytes:
    survey = {**SURVEY, "survey_id": survey_id, "age": age}
    return json.dumps(envelope(survey, event_id=event_id, submitted_at=SUBMITTED)).encode()


# key -> body; keys sort in delivery order
OBJECTS: dict[str, bytes] = {
    "2026/03/01/20/s-1-a": record("e1", "SRV-S1", 21) + record("e2", "SRV-BOTH-EARLY", 22),
    # e1 again (at-least-once), a second event for SRV-S3, and a bad record
    "2026/03/01/20/s-1-b": b"\n".join(
        [
            record("e1", "SRV-S1", 21),
            record("e3", "SRV-S3", 23),
            record("e4", "SRV-S3", 24),
            record("e5", "SRV-S5", 200),  # age out of range: quarantined
            record("e6", "SRV-BOTH-LATE", 26),
        ]
    ),
    "2026/03/01/20/s-1-c.gz": gzip.compress(record("e7", "SRV-S7", 27))[:20],  # corrupt
}

BATCH: list[tuple[str, int, datetime]] = [  # survey_id, age, loaded_at
    ("SRV-B1", 41, EARLY),
    ("SRV-BOTH-EARLY", 42, EARLY),
    ("SRV-BOTH-LATE", 43, LATE),
]


def batch_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [
        {
            "batch_id": f"csv-{n}",
            "source_file": f"exports/{n}.csv",
            "source_line": 2,
            "file_sha256": str(n) * 64,
            "loaded_at": loaded_at,
            "survey_id": survey_id,
            "customer_id": f"CUS-{n}",
            "survey_submitted_at": SUBMITTED,
            **SURVEY,
            "age": age,
        }
        for n, (survey_id, age, loaded_at) in enumerate(BATCH)
    ]
    audit = [
        {
            "batch_id": row["batch_id"],
            "source_kind": "csv",
            "source_file": row["source_file"],
            "layout": "invistico",
            "status": "loaded",
            "rows_in_file": 1,
            "rows_loaded": 1,
            "rows_quarantined": 0,
            "started_at": row["loaded_at"],
            "finished_at": row["loaded_at"],
        }
        for row in rows
    ]
    return rows, audit


class Objects:
    def list_keys(self, prefix: str = "") -> list[str]:
        return sorted(OBJECTS)

    def get_object(self, key: str) -> bytes:
        return OBJECTS[key]


def expected_surveys() -> dict[str, tuple[str, int]]:
    """survey_id -> (channel, age) of the copy loaded last."""
    stream: dict[str, int] = {}
    for body in OBJECTS.values():  # in key order, so a later event of a survey wins
        if body[:2] == b"\x1f\x8b":
            continue
        for line in body.replace(b"}{", b"}\n{").split(b"\n"):
            survey = json.loads(line)["survey"]
            if survey["age"] <= 120:
                stream[survey["survey_id"]] = survey["age"]
    winners = {sid: ("stream", age) for sid, age in stream.items()}
    for survey_id, age, loaded_at in BATCH:
        if survey_id not in winners or loaded_at > datetime.now():
            winners[survey_id] = ("batch", age)
    return winners


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    work = tmp_path_factory.mktemp(f"dbt_stream_{request.param}")
    settings = replace(Settings.from_env({}), data_dir=work)
    if request.param == "duckdb":
        warehouse = Warehouse("duckdb", work, duckdb_path=settings.warehouse_path)
    else:
        pg: PostgresSettings = request.getfixturevalue("module_pg_database")
        warehouse = Warehouse("postgres", work, postgres=pg)
        settings = replace(settings, postgres=pg)
    rows, audit = batch_rows()
    warehouse.load_raw([(LOAD_AUDIT, audit), (SURVEY_RESPONSES, rows)])
    result = load_firehose(settings, destination=Objects(), target=request.param)
    assert (result.records, result.loaded, result.quarantined) == (8, 6, 2)
    build = warehouse.dbt("build")
    assert build.returncode == 0, build.stdout[-6000:]
    yield warehouse


def test_build_is_green_with_stream_loads_in_the_audit(built: Warehouse) -> None:
    run = json.loads((built.work_dir / "target" / "run_results.json").read_text())
    statuses = {
        r["unique_id"].rsplit(".", 1)[-1]: r["status"]
        for r in run["results"]
        if not r["unique_id"].startswith("exposure.")
    }
    assert statuses["assert_load_audit_reconciles"] == "pass"
    assert statuses["assert_rows_reconcile_raw_to_fct"] == "pass"
    assert statuses["test_stg_survey_events_keeps_the_first_copy_of_each_event"] == "pass"
    assert statuses["test_int_surveys_deduplicated_across_batch_and_stream"] == "pass"
    assert {s for s in statuses.values()} <= {"pass", "success"}
    kinds = built.query("select source_kind, count(*) as n from raw.load_audit group by 1")
    assert {k["source_kind"]: k["n"] for k in kinds} == {"csv": 3, "firehose": 3}


def test_staging_keeps_one_row_per_event(built: Warehouse) -> None:
    rows = built.query(
        "select survey_id, source_file, source_line, channel from staging.stg_raw__survey_events"
    )
    # e1 was delivered in objects a and b: the first landed copy (object a, record 1) stays
    e1 = [r for r in rows if r["survey_id"] == "SRV-S1"]
    assert [(r["source_file"], r["source_line"]) for r in e1] == [("2026/03/01/20/s-1-a", 1)]
    assert len(rows) == 5  # 6 landed records, one of them a second copy of e1
    assert {r["channel"] for r in rows} == {"stream"}


def test_marts_keep_one_row_per_survey_across_batch_and_stream(built: Warehouse) -> None:
    rows = built.query("select survey_id, channel, age from marts.fct_survey_responses")
    actual = {r["survey_id"]: (r["channel"], r["age"]) for r in rows}
    assert len(rows) == len(actual)
    assert actual == expected_surveys()
    # the batch copy loaded before the stream loses; the one loaded after it wins
    assert actual["SRV-BOTH-EARLY"] == ("stream", 22)
    assert actual["SRV-BOTH-LATE"] == ("batch", 43)
    # a survey posted twice as two events keeps the later one
    assert actual["SRV-S3"] == ("stream", 24)


def test_stream_quarantine_is_audited_per_object(built: Warehouse) -> None:
    rows = built.query(
        "select source_file, reason, source_line from staging.stg_raw__quarantine "
        "order by source_file"
    )
    assert [(r["source_file"], r["reason"], r["source_line"]) for r in rows] == [
        ("2026/03/01/20/s-1-b", "schema_violation", 4),
        ("2026/03/01/20/s-1-c.gz", "corrupt_gzip", None),
    ]
    audit = built.query(
        "select source_file, rows_in_file, rows_loaded, rows_quarantined "
        "from staging.stg_raw__load_audit where source_kind = 'firehose' order by source_file"
    )
    assert [tuple(a.values()) for a in audit] == [
        ("2026/03/01/20/s-1-a", 2, 2, 0),
        ("2026/03/01/20/s-1-b", 5, 4, 1),
        ("2026/03/01/20/s-1-c.gz", 1, 0, 1),
    ]
