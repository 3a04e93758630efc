"""Helpers for the dbt tests: run dbt in a subprocess against a scratch warehouse, and read it."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from ingestion.config import REPO_ROOT, PostgresSettings
from ingestion.schema import RawTable
from ingestion.warehouse import connect_duckdb, connect_postgres, ensure_raw_tables

DBT = Path(REPO_ROOT) / ".venv" / "bin" / "dbt"


@dataclass(frozen=True)
class Warehouse:
    """A scratch warehouse (a DuckDB file or a PostgreSQL database) and a dbt setup for it."""

    target: str  # 'duckdb' or 'postgres'
    work_dir: Path
    duckdb_path: Path | None = None
    postgres: PostgresSettings | None = None

    @property
    def profiles_dir(self) -> Path:
        return self.work_dir / "profiles"

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
        if self.duckdb_path is not None:
            env["CONTRAIL_DUCKDB_PATH"] = str(self.duckdb_path)
        if self.postgres is not None:
            env.update(
                CONTRAIL_PG_HOST=self.postgres.host,
                CONTRAIL_PG_PORT=str(self.postgres.port),
                CONTRAIL_PG_USER=self.postgres.user,
                CONTRAIL_PG_PASSWORD=self.postgres.password,
                CONTRAIL_PG_DATABASE=self.postgres.database,
            )
        return env

    def connect(self) -> Any:
        if self.target == "duckdb":
            assert self.duckdb_path is not None
            return connect_duckdb(self.duckdb_path)
        assert self.postgres is not None
        return connect_postgres(self.postgres)

    def dbt(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one dbt command from the repository root; the result keeps dbt's output."""
        self.profiles_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / "profiles.yml.example", self.profiles_dir / "profiles.yml")
        command = [
            str(DBT),
            *args,
            "--project-dir",
            str(REPO_ROOT),
            "--profiles-dir",
            str(self.profiles_dir),
            "--target-path",
            str(self.work_dir / "target"),
            "--log-path",
            str(self.work_dir / "logs"),
            "--target",
            self.target,
        ]
        return subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def load_raw(self, rows_by_table: Sequence[tuple[RawTable, Sequence[dict[str, Any]]]]) -> None:
        """Create the raw tables and insert hand-made rows (missing columns are null)."""
        conn = self.connect()
        try:
            ensure_raw_tables(conn)
            marker = "?" if self.target == "duckdb" else "%s"
            for table, rows in rows_by_table:
                names = [name for name, _ in table.columns]
                unknown = {key for row in rows for key in row} - set(names)
                assert not unknown, f"fixture columns not in {table.qualified}: {unknown}"
                sql = (
                    f"insert into {table.qualified} ({', '.join(names)}) "
                    f"values ({', '.join([marker] * len(names))})"
                )
                values = [tuple(row.get(name) for name in names) for row in rows]
                if not values:
                    continue
                if self.target == "duckdb":
                    conn.executemany(sql, values)
                else:
                    with conn.cursor() as cur:
                        cur.executemany(sql, values)
            if self.target == "postgres":
                conn.commit()
        finally:
            conn.close()

    def query(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a query as dicts."""
        conn = self.connect()
        try:
            if self.target == "duckdb":
                cur = conn.execute(sql)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
            with conn.cursor() as cur:
                cur.execute(sql)
                names = [d[0] for d in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> Warehouse:
    """An empty DuckDB warehouse file in a temporary folder."""
    return Warehouse("duckdb", tmp_path, duckdb_path=tmp_path / "warehouse.duckdb")


def make_postgres_database(server: PostgresSettings) -> tuple[PostgresSettings, Any]:
    """Create a fresh database on the test server; return its settings and a drop function."""
    import psycopg2

    name = f"contrail_dbt_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(server.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")

    def drop() -> None:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()

    return replace(server, database=name), drop


@pytest.fixture(scope="module")
def module_pg_database(postgres_server: PostgresSettings) -> Iterator[PostgresSettings]:
    """A fresh PostgreSQL database shared by the tests of one module."""
    settings, drop = make_postgres_database(postgres_server)
    try:
        yield settings
    finally:
        drop()
