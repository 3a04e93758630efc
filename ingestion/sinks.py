"""Warehouse writers the loaders share: Arrow tables in, one transaction, one audit row each.

``load_csv`` and ``load_firehose`` subclass these with what is their own (how a file's rows
are keyed, what counts as loaded before).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from ingestion.config import Settings
from ingestion.schema import LOAD_AUDIT, LOAD_AUDIT_COLUMNS
from ingestion.warehouse import connect_duckdb, connect_postgres, ensure_raw_tables

# DuckDB's memory during a load: a load streams, and the buffer cache would otherwise grow
# to 80% of RAM.
DUCKDB_MEMORY_LIMIT = "512MB"

_AUDIT_NAMES = [name for name, _ in LOAD_AUDIT_COLUMNS]


class DuckDBWriter:
    """Writes to the DuckDB warehouse.

    Database-wide settings for a load (one insert thread, while the other core prepares the
    next block; a small memory limit) are restored on close, to the precision DuckDB reports
    them, since dbt running in this process may share the database instance.
    """

    PARAM = "?"
    LOAD_SETTINGS: ClassVar[dict[str, str]] = {"threads": "1", "memory_limit": DUCKDB_MEMORY_LIMIT}

    def __init__(self, settings: Settings) -> None:
        self.conn = connect_duckdb(settings.warehouse_path)
        ensure_raw_tables(self.conn)
        self._before = {
            name: self.run("select current_setting(?)", [name])[0][0] for name in self.LOAD_SETTINGS
        }
        for name, value in self.LOAD_SETTINGS.items():
            self.run(f"set {name} = '{value}'")

    def run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Execute and drain the result (DuckDB wants it drained before the next statement)."""
        return self.conn.execute(sql, params or []).fetchall()

    def begin(self) -> None:
        self.conn.begin()

    # Arrow tables reach DuckDB by replacement scan (a local variable named in the SQL, looked
    # up in the frame that calls execute), not by conn.register(): a view registered inside a
    # transaction is kept, with its data, until the transaction ends, so a long load would hold
    # every block in memory.

    def insert(self, table_name: str, table: pa.Table) -> None:
        contrail_rows = table  # noqa: F841 (read by DuckDB by name, from this frame)
        columns = ", ".join(table.column_names)
        self.conn.execute(
            f"insert into {table_name} ({columns}) select {columns} from contrail_rows"
        ).fetchall()

    def insert_audit(self, row: dict[str, Any]) -> None:
        self.run(
            f"insert into {LOAD_AUDIT.qualified} ({', '.join(_AUDIT_NAMES)}) "
            f"values ({', '.join('?' for _ in _AUDIT_NAMES)})",
            [row[name] for name in _AUDIT_NAMES],
        )

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction open
            self.conn.rollback()

    def close(self) -> None:
        try:
            with contextlib.suppress(duckdb.Error):
                for name, value in self._before.items():
                    self.run(f"set {name} = '{value}'")
        finally:
            self.conn.close()


class PostgresWriter:
    """Writes to PostgreSQL: Arrow tables through COPY, in the connection's one transaction."""

    PARAM = "%s"

    def __init__(self, settings: Settings) -> None:
        self.conn = connect_postgres(settings.postgres)
        ensure_raw_tables(self.conn)
        self.cur = self.conn.cursor()

    def run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        self.cur.execute(sql, params or [])
        return list(self.cur.fetchall()) if self.cur.description else []

    def begin(self) -> None:
        """Nothing to do: psycopg2 opens the transaction with its first statement."""

    def insert(self, table_name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        columns = ", ".join(table.column_names)
        self.cur.copy_expert(
            f"copy {table_name} ({columns}) from stdin with (format csv)", buffer, size=1 << 20
        )

    def insert_audit(self, row: dict[str, Any]) -> None:
        self.run(
            f"insert into {LOAD_AUDIT.qualified} ({', '.join(_AUDIT_NAMES)}) "
            f"values ({', '.join('%s' for _ in _AUDIT_NAMES)})",
            [row[name] for name in _AUDIT_NAMES],
        )

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()
