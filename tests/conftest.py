"""Shared fixtures: isolated data directories and a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ingestion.config import REPO_ROOT, PostgresSettings, Settings

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
INVISTICO_HEAD = SHARED_DATA / "Invistico_Airline.head37955.csv"

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data directory is a fresh temporary folder."""
    return replace(Settings.from_env({}), data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def postgres_server() -> PostgresSettings:
    """A running PostgreSQL server: the one `make test` started, or one started here."""
    import psycopg2

    base = PostgresSettings.from_env({**os.environ, "CONTRAIL_PG_DATABASE": "postgres"})
    try:
        psycopg2.connect(base.dsn(), connect_timeout=3).close()
    except psycopg2.OperationalError:
        env = {**os.environ, "CONTRAIL_PG_PORT": str(base.port)}
        subprocess.run([str(REPO_ROOT / "scripts" / "postgres.sh"), "start"], check=True, env=env)
    return base


@pytest.fixture
def pg_settings(postgres_server: PostgresSettings) -> Iterator[PostgresSettings]:
    """A fresh, empty database on the test server, dropped afterwards."""
    import psycopg2

    name = f"contrail_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(postgres_server.dsn())
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield replace(postgres_server, database=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


@pytest.fixture
def invistico_head() -> Path:
    """The real 37,955-row Invistico prefix from ../shared/data, or skip when it is absent."""
    if not INVISTICO_HEAD.exists():
        pytest.skip(
            f"real survey data not present at {INVISTICO_HEAD} (only in the project's workspace)"
        )
    return INVISTICO_HEAD
