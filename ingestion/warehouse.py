"""Connections to the warehouse engines, and creation of the raw tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ingestion.config import PostgresSettings
from ingestion.errors import ContrailError
from ingestion.schema import raw_ddl


def connect_duckdb(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB warehouse file, with extension auto-install off (no network here)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(
            str(path),
            read_only=read_only,
            config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
        )
    except duckdb.ConnectionException:
        # This process already has the file open with another configuration (dbt runs
        # in-process): share that database instance.
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise ContrailError(
            f"{path}: cannot open the DuckDB warehouse ({exc}). Another process holds it; "
            "stop it (dashboards read data/serving/, never this file) and retry."
        ) from exc


def connect_postgres(settings: PostgresSettings) -> Any:
    """Open a psycopg2 connection (autocommit off) to the PostgreSQL warehouse."""
    import psycopg2

    try:
        return psycopg2.connect(settings.dsn(), connect_timeout=10)
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise ContrailError(
            f"cannot reach PostgreSQL at {settings.host}:{settings.port} "
            f"database {settings.database!r}: {first_line}. "
            "Start it (scripts/postgres.sh start) or set CONTRAIL_PG_HOST/PORT/USER/DATABASE."
        ) from exc


def ensure_raw_tables(conn: Any) -> None:
    """Create the raw schema and tables if missing. Works on DuckDB and psycopg2 connections."""
    if isinstance(conn, duckdb.DuckDBPyConnection):
        for statement in raw_ddl():
            conn.execute(statement)
        return
    with conn.cursor() as cur:
        for statement in raw_ddl():
            cur.execute(statement)
    conn.commit()
