"""The incremental delivery-object loader: framings, quarantine, enrichment, incremental runs."""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest

from ingestion.config import Settings
from ingestion.enrich import enrich
from ingestion.errors import ContrailError
from ingestion.events import envelope
from ingestion.load_firehose import load_firehose, record_starts
from ingestion.schema import SURVEY_COLUMNS
from ingestion.warehouse import connect_duckdb, connect_postgres

KEY = "2026/03/01/20/contrail-surveys-1-2026-03-01-20-00-00-{}"
SUBMITTED = datetime(2026, 3, 1, 20, 0, 0, 123456)
SURVEY: dict[str, Any] = {
    "satisfaction": "satisfied",
    "gender": "Female",
    "customer_type": "Loyal Customer",
    "age": 34,
    "type_of_travel": "Business travel",
    "travel_class": "Eco Plus",
    "flight_distance": 1200,
    "seat_comfort": 4,
    "online_support": 0,
    "departure_delay_minutes": 5,
    "arrival_delay_minutes": 7,
}


def event(n: int, **survey: Any) -> dict[str, Any]:
    body = {**SURVEY, "survey_id": f"SRV-{n:016d}", **survey}
    return envelope(
        {k: v for k, v in body.items() if v is not None},
        event_id=f"evt-{n:04d}",
        submitted_at=SUBMITTED,
    )


def record(n: int, **survey: Any) -> bytes:
    return json.dumps(event(n, **survey)).encode()


class Objects:
    """A stand-in Destination: objects in memory; ``fail_on`` makes one read raise."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = dict(objects or {})
        self.fail_on: str | None = None
        self.reads: list[str] = []

    def put_object(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def list_keys(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def get_object(self, key: str) -> bytes:
        if key == self.fail_on:
            raise RuntimeError(f"reading {key} failed")
        self.reads.append(key)
        return self.objects[key]


def query(settings: Settings, sql: str, target: str = "duckdb") -> list[tuple[Any, ...]]:
    if target == "duckdb":
        conn = connect_duckdb(settings.warehouse_path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    conn = connect_postgres(settings.postgres)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def offsets(records: list[bytes], separator: bytes) -> list[int]:
    out, position = [], 0
    for rec in records:
        out.append(position)
        position += len(rec) + len(separator)
    return out


# --- framings and compression --------------------------------------------------------------


@pytest.mark.parametrize("separator", [b"", b"\n"], ids=["concatenated", "ndjson"])
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_reads_every_framing_and_compression(
    settings: Settings, separator: bytes, compress: bool
) -> None:
    records = [record(i, age=20 + i) for i in range(1, 6)]
    body = separator.join(records) + separator
    stored = gzip.compress(body) if compress else body
    objects = Objects({KEY.format("a"): stored})

    result = load_firehose(settings, destination=objects)

    assert (result.records, result.loaded, result.quarantined) == (5, 5, 0)
    rows = query(
        settings,
        "select e.event_id, e.source_line, e.byte_offset, e.age, e.submitted_at, e.source_file, "
        "a.file_bytes from raw.survey_events e join raw.load_audit a on e.batch_id = a.batch_id "
        "order by e.source_line",
    )
    expected = [
        (f"evt-{i:04d}", i, offset, 20 + i, SUBMITTED, KEY.format("a"), len(stored))
        for i, offset in zip(range(1, 6), offsets(records, separator), strict=True)
    ]
    assert rows == expected


def test_landed_values_match_the_records_and_enrichment_fills_only_the_gaps(
    settings: Settings,
) -> None:
    given = record(1, flight_id="AB123-2026-03-01", carrier_code="AB", survey_id=None)
    plain = record(2)
    objects = Objects({KEY.format("a"): given + plain})

    load_firehose(settings, destination=objects, seed=7)

    rows = query(
        settings,
        "select survey_id, flight_id, carrier_code, origin_airport, passenger_name, file_sha256, "
        "seat_comfort, online_support, inflight_service, arrival_delay_minutes "
        "from raw.survey_events order by source_line",
    )
    survey = pa.table(
        {
            name: pa.array([SURVEY.get(name)] * 2, pa.string() if t == "varchar" else pa.int32())
            for name, t in SURVEY_COLUMNS
        }
    )
    filled = enrich(survey, seed=7, file_key=rows[0][5], first_row=0).to_pylist()
    # the record's own values win; enrichment fills what it left out, row by row
    assert rows[0][:5] == (
        filled[0]["survey_id"],
        "AB123-2026-03-01",
        "AB",
        filled[0]["origin_airport"],
        filled[0]["passenger_name"],
    )
    assert rows[1][:5] == (
        "SRV-0000000000000002",
        filled[1]["flight_id"],
        filled[1]["carrier_code"],
        filled[1]["origin_airport"],
        filled[1]["passenger_name"],
    )
    assert rows[0][6:] == (4, 0, None, 7)


def test_time_zone_offsets_are_accepted_and_land_as_naive_utc(settings: Settings) -> None:
    shifted = event(1)
    shifted["submitted_at"] = "2026-03-01T22:00:00+02:00"
    shifted["survey"]["survey_submitted_at"] = "2026-03-01T19:30:00Z"
    objects = Objects({KEY.format("a"): json.dumps(shifted).encode() + record(2)})

    result = load_firehose(settings, destination=objects)

    assert (result.loaded, result.quarantined) == (2, 0)
    rows = query(
        settings,
        "select submitted_at, survey_submitted_at from raw.survey_events order by source_line",
    )
    assert rows[0] == (datetime(2026, 3, 1, 20, 0), datetime(2026, 3, 1, 19, 30))
    assert rows[1][0] == SUBMITTED


# --- the malformed corpus --------------------------------------------------------------------


def _envelope_without(key: str) -> bytes:
    data = event(2)
    del data[key]
    return json.dumps(data).encode()


def _envelope_with(**fields: Any) -> bytes:
    return json.dumps({**event(2), **fields}).encode()


def _survey_without(name: str) -> bytes:
    data = event(2)
    del data["survey"][name]
    return json.dumps(data).encode()


# (id, separator, the bad middle record, reason). Good records 1 and 3 surround it.
CORPUS: list[tuple[str, bytes, bytes, str]] = [
    ("truncated-ndjson-line", b"\n", record(2)[:40], "truncated_json"),
    ("truncated-concatenated", b"", record(2)[:-25], "truncated_json"),
    ("garbage-between-records", b"\n", b"not json at all", "truncated_json"),
    ("invalid-utf8", b"\n", record(2).replace(b"Female", b"F\xe9male"), "invalid_utf8"),
    ("invalid-utf8-concatenated", b"", record(2).replace(b"evt-", b"\xff\xfe-"), "invalid_utf8"),
    ("wrong-event-type", b"", _envelope_with(event_type="survey_deleted"), "wrong_envelope"),
    ("wrong-schema-version", b"\n", _envelope_with(schema_version=2), "wrong_envelope"),
    ("no-survey", b"", _envelope_without("survey"), "wrong_envelope"),
    ("extra-envelope-key", b"\n", _envelope_with(partition="7"), "wrong_envelope"),
    ("not-an-object", b"\n", b"[1, 2, 3]", "wrong_envelope"),
    ("survey-not-an-object", b"", _envelope_with(survey="yes"), "wrong_envelope"),
    ("bad-submitted-at", b"", _envelope_with(submitted_at="yesterday"), "wrong_envelope"),
    ("age-out-of-range", b"", record(2, age=300), "schema_violation"),
    ("rating-as-string", b"\n", record(2, seat_comfort="5"), "schema_violation"),
    ("rating-as-float", b"", record(2, seat_comfort=4.0), "schema_violation"),
    ("unknown-satisfaction", b"", record(2, satisfaction="happy"), "schema_violation"),
    ("missing-gender", b"\n", _survey_without("gender"), "schema_violation"),
    ("extra-survey-field", b"", record(2, mood="fine"), "schema_violation"),
    ("bad-airport-code", b"", record(2, origin_airport="jfk"), "schema_violation"),
    ("delay-too-large", b"\n", record(2, departure_delay_minutes=2**40), "schema_violation"),
]


@pytest.mark.parametrize(
    ("separator", "bad", "reason"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS]
)
def test_malformed_records_are_quarantined_with_key_and_offset(
    settings: Settings, separator: bytes, bad: bytes, reason: str
) -> None:
    parts = [record(1), bad, record(3)]
    body = separator.join(parts) + separator
    key = KEY.format("bad")

    result = load_firehose(settings, destination=Objects({key: body}))

    assert (result.records, result.loaded, result.quarantined) == (3, 2, 1)
    quarantined = query(
        settings,
        "select reason, source_kind, source_file, source_line, byte_offset, detail "
        "from raw.quarantine",
    )
    assert len(quarantined) == 1
    got_reason, kind, source_file, line, offset, detail = quarantined[0]
    assert (got_reason, kind, source_file, line) == (reason, "firehose", key, 2)
    assert offset == len(parts[0]) + len(separator)
    assert detail.startswith(f"{key} byte {offset}: record 2")
    assert query(settings, "select event_id from raw.survey_events order by 1") == [
        ("evt-0001",),
        ("evt-0003",),
    ]
    audit = query(
        settings,
        "select source_kind, source_file, status, rows_in_file, rows_loaded, rows_quarantined "
        "from raw.load_audit",
    )
    assert audit == [("firehose", key, "loaded", 3, 2, 1)]


def test_a_corrupt_gzip_object_is_quarantined_whole(settings: Settings) -> None:
    good = gzip.compress(record(1) + record(2))
    broken = good[: len(good) // 2]
    objects = Objects({KEY.format("a"): broken, KEY.format("b"): gzip.compress(record(3))})

    result = load_firehose(settings, destination=objects)

    assert (result.records, result.loaded, result.quarantined) == (2, 1, 1)
    assert query(settings, "select reason, source_file, source_line from raw.quarantine") == [
        ("corrupt_gzip", KEY.format("a"), None)
    ]
    audit = query(
        settings,
        "select source_file, rows_in_file, rows_loaded, rows_quarantined, file_bytes "
        "from raw.load_audit order by source_file",
    )
    assert audit == [
        (KEY.format("a"), 1, 0, 1, len(broken)),
        (KEY.format("b"), 1, 1, 0, len(objects.objects[KEY.format("b")])),
    ]


def test_a_truncated_object_tail_keeps_every_complete_record(settings: Settings) -> None:
    records = [record(i) for i in range(1, 5)]
    body = b"".join(records)[:-10]

    result = load_firehose(settings, destination=Objects({KEY.format("a"): body}))

    assert (result.records, result.loaded, result.quarantined) == (4, 3, 1)
    assert query(settings, "select reason, source_line, byte_offset from raw.quarantine") == [
        ("truncated_json", 4, sum(len(r) for r in records[:3]))
    ]


# --- incremental runs --------------------------------------------------------------------------


def loaded_events(settings: Settings, target: str = "duckdb") -> list[tuple[str, int]]:
    return query(
        settings,
        "select event_id, count(*) from raw.survey_events group by event_id order by event_id",
        target,
    )


def test_only_new_objects_load_and_a_rerun_loads_nothing(settings: Settings) -> None:
    objects = Objects(
        {KEY.format("a"): record(1) + record(2), KEY.format("b"): record(3)},
    )
    first = load_firehose(settings, destination=objects)
    assert [o.key for o in first.objects] == [KEY.format("a"), KEY.format("b")]

    objects.put_object(KEY.format("c"), record(4) + b"\n" + record(5))
    objects.reads.clear()
    second = load_firehose(settings, destination=objects)
    assert [o.key for o in second.objects] == [KEY.format("c")]
    assert (second.skipped, second.loaded) == (2, 2)
    assert objects.reads == [KEY.format("c")]  # loaded objects are not even read again

    third = load_firehose(settings, destination=objects)
    assert (len(third.objects), third.skipped, third.records) == (0, 3, 0)
    assert loaded_events(settings) == [(f"evt-{i:04d}", 1) for i in range(1, 6)]
    assert query(settings, "select count(*) from raw.load_audit") == [(3,)]


def test_an_interrupted_run_then_a_rerun_loads_each_object_once(settings: Settings) -> None:
    objects = Objects({KEY.format(c): record(i) for i, c in enumerate("abcd", start=1)})
    objects.fail_on = KEY.format("c")
    with pytest.raises(RuntimeError, match="reading"):
        load_firehose(settings, destination=objects)
    # the objects before the failure are committed, nothing of the failed one
    assert loaded_events(settings) == [("evt-0001", 1), ("evt-0002", 1)]

    objects.fail_on = None
    rerun = load_firehose(settings, destination=objects)
    assert [o.key for o in rerun.objects] == [KEY.format("c"), KEY.format("d")]
    assert loaded_events(settings) == [(f"evt-{i:04d}", 1) for i in range(1, 5)]


def test_the_same_bytes_under_another_key_are_audited_but_not_landed_again(
    settings: Settings,
) -> None:
    body = record(1) + record(2)
    objects = Objects({KEY.format("a"): body, KEY.format("b"): body})

    result = load_firehose(settings, destination=objects)

    assert [(o.status, o.records, o.loaded) for o in result.objects] == [
        ("loaded", 2, 2),
        ("duplicate", 0, 0),
    ]
    assert loaded_events(settings) == [("evt-0001", 1), ("evt-0002", 1)]
    audit = query(
        settings,
        "select source_file, rows_in_file, rows_loaded, rows_quarantined, message "
        "from raw.load_audit order by source_file",
    )
    assert [a[:4] for a in audit] == [(KEY.format("a"), 2, 2, 0), (KEY.format("b"), 0, 0, 0)]
    assert KEY.format("a") in audit[1][4]


def test_the_default_destination_is_the_local_landing_directory(settings: Settings) -> None:
    root = settings.data_dir / "landing" / "firehose" / "2026" / "03" / "01" / "20"
    root.mkdir(parents=True)
    (root / "contrail-surveys-1-2026-03-01-20-00-00-x").write_bytes(record(1) + record(2))

    result = load_firehose(settings)

    assert result.loaded == 2
    assert result.objects[0].key == "2026/03/01/20/contrail-surveys-1-2026-03-01-20-00-00-x"


def test_an_unknown_target_is_refused(settings: Settings) -> None:
    with pytest.raises(ContrailError, match="unknown target 'sqlite'"):
        load_firehose(settings, destination=Objects(), target="sqlite")


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_postgres_loads_quarantines_and_skips_like_duckdb(settings: Settings, pg_settings) -> None:
    pg = replace(settings, postgres=pg_settings)
    body = b"\n".join([record(1, passenger_name='O"Neil, Ann'), record(2, age=-1), record(3)])
    objects = Objects({KEY.format("a"): gzip.compress(body)})

    first = load_firehose(pg, destination=objects, target="postgres")
    objects.put_object(KEY.format("b"), record(4))
    second = load_firehose(pg, destination=objects, target="postgres")

    assert (first.records, first.loaded, first.quarantined) == (3, 2, 1)
    assert (second.skipped, second.loaded) == (1, 1)
    assert loaded_events(pg, "postgres") == [
        ("evt-0001", 1),
        ("evt-0003", 1),
        ("evt-0004", 1),
    ]
    assert query(
        pg,
        "select passenger_name, submitted_at from raw.survey_events where source_line = 1 "
        "and event_id = 'evt-0001'",
        "postgres",
    ) == [('O"Neil, Ann', SUBMITTED)]
    assert query(pg, "select reason, source_line, byte_offset from raw.quarantine", "postgres") == [
        ("schema_violation", 2, len(record(1, passenger_name='O"Neil, Ann')) + 1)
    ]


# --- locating records without a parser, grouped transactions, preparing ahead ---------------


def test_record_starts_finds_every_envelope_and_nothing_inside_strings() -> None:
    tricky = record(2, passenger_name='Ann {"event_id": "x"} }{ Lee')
    records = [record(1), tricky, record(3)]
    data = b"".join(records)
    expected, position = [], data.find(b'{"event_id"')
    while position != -1:
        expected.append(position)
        position = data.find(b'{"event_id"', position + 1)

    assert record_starts(data).tolist() == expected == offsets(records, b"")
    assert record_starts(b"").tolist() == []


def test_a_brace_pair_inside_a_value_still_lands_on_the_fast_path(settings: Settings) -> None:
    name = 'Ann }{"x": 1} Lee\nJr'
    records = [record(1), record(2, passenger_name=name), record(3)]
    objects = Objects({KEY.format("a"): b"".join(records)})

    result = load_firehose(settings, destination=objects)

    assert (result.loaded, result.quarantined) == (3, 0)
    rows = query(
        settings,
        "select source_line, byte_offset, passenger_name from raw.survey_events order by 1",
    )
    assert [r[:2] for r in rows] == [(i + 1, o) for i, o in enumerate(offsets(records, b""))]
    assert rows[1][2] == name


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "with-a-pretty-record"])
@pytest.mark.parametrize("separator", [b"", b"\n"], ids=["concatenated", "ndjson"])
def test_records_with_keys_in_another_order_land_with_their_offsets(
    settings: Settings, separator: bytes, pretty: bool
) -> None:
    def reordered(n: int) -> bytes:
        data = event(n, age=30 + n)
        return json.dumps({"survey": data["survey"], **data}).encode()

    records = [reordered(i) for i in range(1, 4)]
    if pretty:  # line breaks inside a record
        records.append(json.dumps(event(4), indent=2).encode())
    objects = Objects({KEY.format("a"): separator.join(records)})

    result = load_firehose(settings, destination=objects)

    assert (result.records, result.loaded, result.quarantined) == (len(records), len(records), 0)
    rows = query(settings, "select source_line, byte_offset, event_id from raw.survey_events")
    expected = [
        (i + 1, offset, f"evt-{i + 1:04d}") for i, offset in enumerate(offsets(records, separator))
    ]
    assert sorted(rows) == expected


def test_objects_grouped_in_one_transaction_keep_one_audit_row_each(settings: Settings) -> None:
    sizes = {"a": 3, "b": 1, "c": 4, "d": 2}
    objects = Objects(
        {
            KEY.format(name): b"\n".join(record(100 * i + j) for j in range(n))
            for i, (name, n) in enumerate(sizes.items())
        }
    )
    objects.put_object(KEY.format("e"), record(900) + b"garbage")
    committed: list[int] = []

    result = load_firehose(
        settings, destination=objects, group_records=4, progress=committed.append
    )

    assert [o.key for o in result.objects] == sorted(objects.objects)
    assert committed == [len(objects.objects[k]) for k in sorted(objects.objects)]
    audit = query(
        settings,
        "select source_file, rows_in_file, rows_loaded, rows_quarantined, file_bytes "
        "from raw.load_audit order by source_file",
    )
    assert audit == [
        *(
            (KEY.format(name), n, n, 0, len(objects.objects[KEY.format(name)]))
            for name, n in sizes.items()
        ),
        (KEY.format("e"), 2, 1, 1, len(objects.objects[KEY.format("e")])),
    ]
    per_object = query(
        settings,
        "select source_file, count(*) from raw.survey_events group by 1 order by 1",
    )
    assert per_object == [(KEY.format(name), n) for name, n in sizes.items()] + [
        (KEY.format("e"), 1)
    ]


def test_a_failure_inside_a_group_rolls_the_whole_group_back(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestion import load_firehose as module

    objects = Objects({KEY.format(c): record(i) for i, c in enumerate("abcde", start=1)})
    load_firehose(settings, destination=Objects({KEY.format("a"): record(1)}))
    calls = {"n": 0}
    original = module._DuckDBSink.insert_audit

    def failing(self: Any, row: dict[str, Any]) -> None:
        calls["n"] += 1
        if row["source_file"] == KEY.format("d"):
            raise RuntimeError("disk full")
        original(self, row)

    monkeypatch.setattr(module._DuckDBSink, "insert_audit", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        load_firehose(settings, destination=objects, group_records=3)
    # b and c were in d's group: nothing of them is left, and the earlier run is intact
    assert loaded_events(settings) == [("evt-0001", 1)]
    assert query(settings, "select source_file from raw.load_audit") == [(KEY.format("a"),)]

    monkeypatch.undo()
    rerun = load_firehose(settings, destination=objects, group_records=3)
    assert [o.key for o in rerun.objects] == [KEY.format(c) for c in "bcde"]
    assert loaded_events(settings) == [(f"evt-{i:04d}", 1) for i in range(1, 6)]


def test_a_failed_read_after_a_full_group_keeps_every_committed_group(
    settings: Settings,
) -> None:
    objects = Objects({KEY.format(c): record(i) for i, c in enumerate("abcdef", start=1)})
    objects.fail_on = KEY.format("e")

    with pytest.raises(RuntimeError, match="reading"):
        load_firehose(settings, destination=objects, group_records=3)

    assert loaded_events(settings) == [(f"evt-{i:04d}", 1) for i in range(1, 5)]


def test_the_load_leaves_the_database_settings_of_a_shared_instance_as_they_were(
    settings: Settings,
) -> None:
    held = connect_duckdb(settings.warehouse_path)  # e.g. dbt, in-process
    try:
        held.execute("set threads = 2").fetchall()
        # DuckDB reports the limit to 0.1 of its unit: a value it can restore exactly
        held.execute("set memory_limit = '2GiB'").fetchall()
        before = held.execute(
            "select current_setting('threads'), current_setting('memory_limit')"
        ).fetchall()

        load_firehose(settings, destination=Objects({KEY.format("a"): record(1)}))

        after = held.execute(
            "select current_setting('threads'), current_setting('memory_limit')"
        ).fetchall()
        assert after == before
        assert held.execute("select count(*) from raw.survey_events").fetchall() == [(1,)]
    finally:
        held.close()


def test_records_apart_by_spaces_are_never_taken_as_one(settings: Settings) -> None:
    def reordered(n: int, **survey: Any) -> bytes:
        data = event(n, **survey)
        return json.dumps({"survey": data["survey"], **data}).encode()

    # a '}{' inside a value would make one piece too many, two records apart by a space one
    # too few: the counts agree, yet the offsets must still be the records' own
    records = [reordered(1, passenger_name="a}{b"), reordered(2), reordered(3)]
    separators = [b"", b" ", b"\n"]
    body = b"".join(r + s for r, s in zip(records, separators, strict=True))

    result = load_firehose(settings, destination=Objects({KEY.format("a"): body}))

    assert (result.loaded, result.quarantined) == (3, 0)
    starts = [0, len(records[0]), len(records[0]) + len(records[1]) + 1]
    rows = query(settings, "select source_line, byte_offset, event_id from raw.survey_events")
    assert sorted(rows) == [(i + 1, starts[i], f"evt-{i + 1:04d}") for i in range(3)]
