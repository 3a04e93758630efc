"""Bring an older snapshot up to the warehouse by copying what changed, not the whole file.

A stream cycle changes a sliver of a large warehouse, so its publish (``ingestion.publish``)
patches the snapshot slot it wrote two publishes ago instead of copying the whole file. The
slot is attached to the warehouse's DuckDB connection and changed in one transaction, so a
crash leaves it as it was (and a restarted runner copies the file whole anyway). Table by
table:

- **Incremental dbt models** with a string ``unique_key`` and ``meta.cycle_window_column``
  (their landing time): the rows newer than the slot's newest landing time are the rows
  the cycles changed; the slot's rows with those keys (wherever they lie: a replaced copy of
  a survey is older) are deleted and the warehouse's rows inserted. A cycle re-inserts the
  rows of its lookback window unchanged, so the older rows the window covers need no copy.
- **Raw tables** (``ingestion.schema.RawTable.appended_by``): the warehouse's rows newer than
  the slot's newest landing time are appended.
- **Every other table** (aggregate marts, small dimensions, seeds) is replaced whole; views are
  recreated when their definition differs; relations gone from the warehouse are dropped.

Each patched table is then checked: the same row count and newest landing time as the
warehouse's. A table that fails (rows deleted without a replacement, say) is replaced whole, so
a patched snapshot never differs from a full copy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from ingestion.schema import RAW_SCHEMA, RAW_TABLES

log = logging.getLogger(__name__)

SLOT = "contrail_slot"  # the slot's catalog name while it is attached
META_SCHEMA = "contrail_meta"  # the snapshot's own stamp; never synced from the warehouse
LOCK_WAIT_S = 3.0  # how long to wait for readers of the slot before giving up


@dataclass(frozen=True)
class DeltaRule:
    """How to find a table's changed rows: by landing time, and by key for upserts."""

    window: str
    key: str | None = None  # None: append-only by ``window``


@dataclass
class PatchReport:
    """What a patch did, table by table ("schema.name")."""

    patched: dict[str, int] = field(default_factory=dict)  # rows copied
    replaced: list[str] = field(default_factory=list)
    reconciled_by_copy: list[str] = field(default_factory=list)  # deltas that did not add up
    views: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def delta_rules(manifest: dict[str, Any] | None) -> dict[tuple[str, str], DeltaRule]:
    """(schema, table) -> rule, from the raw tables' contract and the dbt manifest."""
    rules = {(RAW_SCHEMA, t.name): DeltaRule(t.appended_by) for t in RAW_TABLES}
    for node in (manifest or {}).get("nodes", {}).values():
        config = node.get("config") or {}
        if node.get("resource_type") != "model" or config.get("materialized") != "incremental":
            continue
        key = config.get("unique_key")
        window = (config.get("meta") or {}).get("cycle_window_column")
        if isinstance(key, str) and window:
            relation = (node["schema"].lower(), (node.get("alias") or node["name"]).lower())
            rules[relation] = DeltaRule(window, key)
    return rules


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(catalog: str, schema: str, name: str) -> str:
    return f"{_quote(catalog)}.{_quote(schema)}.{_quote(name)}"


def _is_locked(exc: Exception) -> bool:
    return "lock" in str(exc).lower()


def attach_slot(conn: duckdb.DuckDBPyConnection, path: Path, wait_s: float = LOCK_WAIT_S) -> bool:
    """Attach ``path`` read-write as SLOT; False when readers still hold it after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute(f"attach '{path}' as {SLOT}")
            return True
        except duckdb.IOException as exc:
            if not _is_locked(exc) or time.monotonic() >= deadline:
                if _is_locked(exc):
                    return False
                raise
            time.sleep(0.05)


def detach_slot(conn: duckdb.DuckDBPyConnection) -> None:
    attached = conn.execute(
        "select count(*) from duckdb_databases() where database_name = ?", [SLOT]
    ).fetchone()
    if attached and attached[0]:
        conn.execute(f"detach {SLOT}")


def _tables(conn: duckdb.DuckDBPyConnection, catalog: str) -> dict[tuple[str, str], list[Any]]:
    rows = conn.execute(
        "select c.schema_name, c.table_name, c.column_name, c.data_type "
        "from duckdb_columns() c join duckdb_tables() t "
        "on t.database_name = c.database_name and t.schema_name = c.schema_name "
        "and t.table_name = c.table_name "
        "where c.database_name = ? and not c.internal and c.schema_name <> ? "
        "order by c.schema_name, c.table_name, c.column_index",
        [catalog, META_SCHEMA],
    ).fetchall()
    tables: dict[tuple[str, str], list[Any]] = {}
    for schema, table, column, data_type in rows:
        tables.setdefault((schema.lower(), table.lower()), []).append((column, data_type))
    return tables


def _views(conn: duckdb.DuckDBPyConnection, catalog: str) -> dict[tuple[str, str], str]:
    rows = conn.execute(
        "select schema_name, view_name, sql from duckdb_views() "
        "where database_name = ? and not internal and schema_name <> ?",
        [catalog, META_SCHEMA],
    ).fetchall()
    return {(s.lower(), v.lower()): sql for s, v, sql in rows}


def _one(conn: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    return row[0] if row else None


def _replace_whole(
    conn: duckdb.DuckDBPyConnection, source: str, target: str, columns: list[str]
) -> None:
    names = ", ".join(_quote(c) for c in columns)
    conn.execute(f"delete from {target}")
    conn.execute(f"insert into {target} ({names}) select {names} from {source}")


def _apply_delta(
    conn: duckdb.DuckDBPyConnection, source: str, target: str, columns: list[str], rule: DeltaRule
) -> int | None:
    """Copy the changed rows; their count, or None when the slot has no rows to start from."""
    window = _quote(rule.window)
    newest = _one(conn, f"select max({window}) from {target}")
    if newest is None:
        return None
    # Rows share a landing time only when they landed (or were derived from rows landed) in
    # one transaction, so the rows at the slot's newest time are already in it. A literal
    # bound lets DuckDB skip the storage blocks before it (zone maps).
    since = f"cast('{newest}' as timestamp)"
    names = ", ".join(_quote(c) for c in columns)
    if rule.key is not None:
        key = _quote(rule.key)
        conn.execute(
            f"delete from {target} where {key} in "
            f"(select {key} from {source} where {window} > {since})"
        )
    conn.execute(
        f"insert into {target} ({names}) select {names} from {source} where {window} > {since}"
    )
    return int(_one(conn, f"select count(*) from {source} where {window} > {since}"))


def _reconciles(conn: duckdb.DuckDBPyConnection, source: str, target: str, rule: DeltaRule) -> bool:
    window = _quote(rule.window)
    probe = f"select count(*), max({window}) from "
    return conn.execute(probe + source).fetchone() == conn.execute(probe + target).fetchone()


def patch_slot(
    conn: duckdb.DuckDBPyConnection,
    rules: dict[tuple[str, str], DeltaRule],
    stamp: Callable[[duckdb.DuckDBPyConnection, str], None],
) -> PatchReport:
    """Make the attached SLOT equal the connection's own database, in one transaction.

    ``stamp(conn, catalog)`` writes the snapshot's stamp into ``catalog`` inside that
    transaction. The caller checkpoints and detaches the slot.
    """
    started = time.perf_counter()
    report = PatchReport()
    home = _one(conn, "select current_database()")
    conn.execute("begin")
    try:
        source_tables, slot_tables = _tables(conn, home), _tables(conn, SLOT)
        source_views, slot_views = _views(conn, home), _views(conn, SLOT)
        for schema, name in sorted(set(slot_views) - set(source_views)):
            conn.execute(f"drop view {_relation(SLOT, schema, name)}")
            report.dropped.append(f"{schema}.{name}")
        for schema, name in sorted(set(slot_tables) - set(source_tables)):
            conn.execute(f"drop table {_relation(SLOT, schema, name)}")
            report.dropped.append(f"{schema}.{name}")
        for schema in sorted({s for s, _ in source_tables} | {s for s, _ in source_views}):
            conn.execute(f"create schema if not exists {_quote(SLOT)}.{_quote(schema)}")

        for (schema, name), columns in sorted(source_tables.items()):
            label = f"{schema}.{name}"
            source = _relation(home, schema, name)
            target = _relation(SLOT, schema, name)
            column_names = [c for c, _ in columns]
            if slot_tables.get((schema, name)) != columns:
                conn.execute(f"create or replace table {target} as select * from {source}")
                report.replaced.append(label)
                continue
            rule = rules.get((schema, name))
            if (
                rule is not None
                and rule.window in column_names
                and (rule.key is None or rule.key in column_names)
            ):
                copied = _apply_delta(conn, source, target, column_names, rule)
                if copied is not None and _reconciles(conn, source, target, rule):
                    report.patched[label] = copied
                    continue
                if copied is not None:
                    log.warning("%s: the delta did not reconcile; copying the table whole", label)
                    report.reconciled_by_copy.append(label)
            _replace_whole(conn, source, target, column_names)
            report.replaced.append(label)

        changed_views = [v for v, sql in source_views.items() if slot_views.get(v) != sql]
        if changed_views:
            # A view's stored SQL names relations without a catalog: create it with the slot
            # as the default catalog, so they resolve in the slot.
            conn.execute(f"use {SLOT}")
            try:
                for schema, name in sorted(changed_views):
                    conn.execute(f"drop view if exists {_relation(SLOT, schema, name)}")
                    conn.execute(source_views[(schema, name)])
                    report.views.append(f"{schema}.{name}")
            finally:
                conn.execute(f"use {_quote(home)}")
        stamp(conn, SLOT)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    report.seconds = time.perf_counter() - started
    return report
