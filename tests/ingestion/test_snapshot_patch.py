"""Patching an older snapshot: after the patch it holds exactly what the warehouse holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.config import REPO_ROOT
from ingestion.snapshot_patch import (
    SLOT,
    DeltaRule,
    attach_slot,
    delta_rules,
    detach_slot,
    patch_slot,
)
from ingestion.warehouse import ensure_raw_tables

T0 = datetime(2026, 3, 1, 8, 0, 0)
# What the test's warehouse declares: marts.facts is an incremental model keyed on fact_id.
MANIFEST = {
    "nodes": {
        "model.contrail.facts": {
            "resource_type": "model",
            "name": "facts",
            "alias": "facts",
            "schema": "marts",
            "config": {
                "materialized": "incremental",
                "unique_key": "fact_id",
                "meta": {"cycle_window_column": "loaded_at"},
            },
        },
        "model.contrail.totals": {
            "resource_type": "model",
            "name": "totals",
            "schema": "marts",
            "config": {"materialized": "table"},
        },
    }
}


def _event_row(n: int, loaded_at: datetime) -> tuple:
    return (f"batch-{loaded_at:%H%M}", f"evt-{n}", f"SRV-{n}", loaded_at)


def _add_events(conn: duckdb.DuckDBPyConnection, numbers: range, loaded_at: datetime) -> None:
    conn.executemany(
        "insert into raw.survey_events (batch_id, event_id, survey_id, loaded_at) "
        "values (?, ?, ?, ?)",
        [_event_row(n, loaded_at) for n in numbers],
    )


def _upsert_fact(conn: duckdb.DuckDBPyConnection, fact_id: str, value: int, at: datetime) -> None:
    conn.execute("delete from marts.facts where fact_id = ?", [fact_id])
    conn.execute("insert into marts.facts values (?, ?, ?)", [fact_id, value, at])


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A warehouse with raw events, an incremental fact, a summary table and a view."""
    path = tmp_path / "warehouse.duckdb"
    conn = duckdb.connect(str(path))
    ensure_raw_tables(conn)
    conn.execute("create schema marts")
    conn.execute("create table marts.facts (fact_id varchar, value integer, loaded_at timestamp)")
    conn.executemany(
        "insert into marts.facts values (?, ?, ?)",
        [(f"F{n}", n, T0 + timedelta(minutes=n % 3)) for n in range(100)],
    )
    conn.execute("create table marts.totals as select sum(value) as total from marts.facts")
    conn.execute("create table marts.retired (n integer)")
    conn.execute("create view marts.recent as select * from marts.facts where value > 90")
    _add_events(conn, range(50), T0)
    _add_events(conn, range(50, 60), T0 + timedelta(minutes=1))
    conn.close()
    return path


def _slot_of(warehouse: Path) -> Path:
    slot = warehouse.with_name("slot.duckdb")
    shutil.copyfile(warehouse, slot)
    return slot


def _contents(conn: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, list[tuple]]:
    relations = conn.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ? "
        "union all select schema_name, view_name from duckdb_views() "
        "where database_name = ? and not internal",
        [catalog, catalog],
    ).fetchall()
    return {
        f"{schema}.{name}": sorted(
            conn.execute(f'select * from "{catalog}"."{schema}"."{name}"').fetchall(),
            key=repr,
        )
        for schema, name in relations
        if schema != "contrail_meta"
    }


def _patch(warehouse: Path, slot: Path, rules: dict | None = None):
    conn = duckdb.connect(str(warehouse))
    try:
        assert attach_slot(conn, slot)
        stamped: list[str] = []
        report = patch_slot(
            conn,
            delta_rules(MANIFEST) if rules is None else rules,
            lambda c, catalog: stamped.append(catalog),
        )
        assert stamped == [SLOT]
        ours, theirs = _contents(conn, "warehouse"), _contents(conn, SLOT)
        detach_slot(conn)
    finally:
        conn.close()
    return report, ours, theirs


def test_rules_come_from_the_raw_contract_and_the_incremental_models() -> None:
    rules = delta_rules(MANIFEST)
    assert rules[("marts", "facts")] == DeltaRule("loaded_at", "fact_id")
    assert rules[("raw", "survey_events")] == DeltaRule("loaded_at")
    assert rules[("raw", "load_audit")] == DeltaRule("finished_at")
    assert ("marts", "totals") not in rules  # a table model: replaced whole


def test_a_patched_slot_holds_what_the_warehouse_holds(warehouse: Path) -> None:
    slot = _slot_of(warehouse)
    conn = duckdb.connect(str(warehouse))
    later = T0 + timedelta(minutes=10)
    _add_events(conn, range(60, 63), later)  # three new raw rows
    _upsert_fact(conn, "F7", 700, later)  # an old row replaced by a newer copy
    _upsert_fact(conn, "F200", 200, later)  # a new row
    conn.execute("create or replace table marts.totals as select sum(value) total from marts.facts")
    conn.execute("drop table marts.retired")
    conn.execute(
        "create or replace view marts.recent as select * from marts.facts where value > 150"
    )
    conn.execute("create table marts.added as select 1 as one")
    conn.close()

    report, ours, theirs = _patch(warehouse, slot)

    assert theirs == ours
    assert report.patched["raw.survey_events"] == 3
    assert report.patched["marts.facts"] == 2
    assert "marts.totals" in report.replaced and "marts.added" in report.replaced
    assert report.dropped == ["marts.retired"]
    assert report.views == ["marts.recent"]
    assert report.reconciled_by_copy == []
    # the replaced copy is gone and the new value is there, computed by hand
    facts = dict((r[0], r[1]) for r in theirs["marts.facts"])
    assert (facts["F7"], facts["F200"], len(facts)) == (700, 200, 101)
    assert theirs["marts.totals"] == [(sum(range(100)) - 7 + 700 + 200,)]


def test_an_untouched_large_history_is_not_copied(warehouse: Path) -> None:
    slot = _slot_of(warehouse)
    report, ours, theirs = _patch(warehouse, slot)
    assert theirs == ours
    # rows at the slot's newest landing time are already in it: nothing to copy
    assert report.patched["raw.survey_events"] == 0
    assert report.patched["marts.facts"] == 0


def test_a_delta_that_does_not_reconcile_copies_the_table_whole(warehouse: Path) -> None:
    slot = _slot_of(warehouse)
    conn = duckdb.connect(str(warehouse))
    conn.execute("delete from marts.facts where fact_id = 'F3'")  # gone, no newer copy
    conn.execute("delete from raw.survey_events where event_id = 'evt-4'")  # not an append
    conn.close()

    report, ours, theirs = _patch(warehouse, slot)

    assert theirs == ours
    assert sorted(report.reconciled_by_copy) == ["marts.facts", "raw.survey_events"]
    assert len(theirs["marts.facts"]) == 99 and len(theirs["raw.survey_events"]) == 59


def test_a_changed_column_list_replaces_the_table(warehouse: Path) -> None:
    slot = _slot_of(warehouse)
    conn = duckdb.connect(str(warehouse))
    conn.execute("alter table marts.facts add column note varchar")
    conn.close()
    report, ours, theirs = _patch(warehouse, slot)
    assert theirs == ours
    assert "marts.facts" in report.replaced


def test_a_failing_patch_leaves_the_slot_as_it_was(warehouse: Path) -> None:
    slot = _slot_of(warehouse)
    conn = duckdb.connect(str(warehouse))
    _add_events(conn, range(60, 63), T0 + timedelta(minutes=10))

    def broken_stamp(c: duckdb.DuckDBPyConnection, catalog: str) -> None:
        raise RuntimeError("stamp failed")

    assert attach_slot(conn, slot)
    with pytest.raises(RuntimeError, match="stamp failed"):
        patch_slot(conn, delta_rules(MANIFEST), broken_stamp)
    count = conn.execute(f"select count(*) from {SLOT}.raw.survey_events").fetchone()[0]
    detach_slot(conn)
    conn.close()
    assert count == 60  # the three new rows were rolled back


HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(60)
"""


def test_a_slot_a_reader_holds_open_is_not_attached(warehouse: Path) -> None:
    slot = _slot_of(warehouse)
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(slot)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "holding"
        conn = duckdb.connect(str(warehouse))
        try:
            assert attach_slot(conn, slot, wait_s=0.3) is False
        finally:
            conn.close()
    finally:
        reader.kill()
        reader.wait()
    conn = duckdb.connect(str(warehouse))
    try:
        assert attach_slot(conn, slot, wait_s=0.3) is True  # free again
        detach_slot(conn)
    finally:
        conn.close()
