"""Publish the warehouse as a read-only snapshot for readers, atomically.

DuckDB allows one writer or many readers per file, never both, so readers (dashboards, API
lookups) never open the file dbt writes. After a passing build the warehouse is checkpointed
(so nothing is left in its write-ahead log), copied beside the snapshot, and swapped in with
``os.replace``. Readers holding the old snapshot open keep reading it until they reopen.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.warehouse import connect_duckdb


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(settings: Settings) -> Path:
    """Checkpoint the DuckDB warehouse and swap a copy into the serving path. Returns that path."""
    source = settings.warehouse_path
    if not source.exists():
        raise ContrailError(f"{source}: no warehouse to publish; run `contrail build` first")
    conn = connect_duckdb(source)
    try:
        conn.execute("checkpoint")
    finally:
        conn.close()
    wal = source.with_name(source.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise ContrailError(f"{wal}: still holds changes after a checkpoint; not publishing")

    destination = settings.serving_path
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(destination.parent)
    return destination
