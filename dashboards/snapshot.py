"""Read the published snapshot: read-only, one short-lived connection per query.

The dashboards never open the file dbt writes (``data/warehouse.duckdb``); DuckDB allows one
writer or many readers per file, so they read ``data/serving/warehouse.duckdb``, which
``ingestion.publish`` swaps in atomically. A connection lives for one query, so a snapshot
swapped mid-session is picked up by the next query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ingestion.config import Settings


class SnapshotMissing(Exception):
    """No snapshot has been published yet at ``path``."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: no published snapshot yet")
        self.path = path


@dataclass(frozen=True)
class SnapshotInfo:
    """Which snapshot a reader sees. ``publish_id`` keys every cache, so a swap invalidates it."""

    path: Path
    publish_id: str  # from contrail_meta.snapshot; the file's mtime and size when absent
    published_at: datetime | None
    has_artifacts: bool


@contextmanager
def connect(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the snapshot, closed on exit."""
    if not path.exists():
        raise SnapshotMissing(path)
    conn = duckdb.connect(str(path), read_only=True, config={"autoinstall_known_extensions": False})
    try:
        yield conn
    finally:
        conn.close()


def query(path: Path, sql: str, params: dict[str, Any] | None = None) -> Any:
    """Run one query on a fresh read-only connection and return a pandas DataFrame."""
    with connect(path) as conn:
        return conn.execute(sql, params or {}).df()


def snapshot_info(settings: Settings) -> SnapshotInfo:
    """The snapshot now in the serving path. Raises SnapshotMissing when there is none."""
    path = settings.serving_path
    with connect(path) as conn:
        stat = path.stat()
        try:
            row = conn.execute(
                "select publish_id, published_at, has_artifacts from contrail_meta.snapshot"
            ).fetchone()
        except duckdb.CatalogException:
            row = None
    if row is None:
        return SnapshotInfo(path, f"mtime-{stat.st_mtime_ns}-{stat.st_size}", None, False)
    return SnapshotInfo(path, str(row[0]), row[1], bool(row[2]))


def load_artifact(settings: Settings, info: SnapshotInfo, name: str) -> dict[str, Any] | None:
    """``manifest.json``, ``run_results.json`` or ``sources.json`` of the build behind ``info``.

    The set published with that snapshot when it still exists; otherwise the copy beside the
    snapshot; ``None`` when neither exists.
    """
    candidates = [settings.serving_artifacts_dir / info.publish_id / name]
    candidates.append(settings.serving_path.parent / name)
    for candidate in candidates:
        try:
            return json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return None
