"""Publish the warehouse as a read-only snapshot for readers, atomically, with its dbt artifacts.

DuckDB allows one writer or many readers per file, never both, so readers (dashboards, API
lookups) never open the file dbt writes. After a passing build the warehouse is checkpointed
(so nothing is left in its write-ahead log), copied beside the snapshot, and swapped in with
``os.replace``. Readers holding the old snapshot open keep reading it until they reopen.

The build's ``manifest.json`` and ``run_results.json`` are published with it, so the dashboards'
trail (lineage, tests and their status) always describes the data it sits beside:

- they are written to ``serving/artifacts/<publish_id>/`` before the swap, and the snapshot
  copy records that ``publish_id`` in ``contrail_meta.snapshot``; a reader takes the id from the
  snapshot it opened, so it never pairs data with another build's artifacts;
- copies are also swapped in beside the snapshot (``serving/manifest.json``,
  ``serving/run_results.json``) for people and tools;
- ``run_results.json`` is merged: a micro-batch build runs a subset of the tests, so results of
  nodes it did not run are carried over from the previous publish (each keeps the time of the
  build that ran it), and results of nodes no longer in the manifest are dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.warehouse import connect_duckdb

KEEP_ARTIFACT_SETS = 5  # older sets are pruned; a reader of an older snapshot falls back


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(destination: Path, data: bytes) -> None:
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def merge_run_results(
    current: dict[str, Any], previous: dict[str, Any] | None, manifest: dict[str, Any] | None
) -> dict[str, Any]:
    """This build's results, plus the previous publish's for nodes this build did not run.

    Every result gains ``built_at``: the ``generated_at`` of the build that produced it.
    """
    built_at = current.get("metadata", {}).get("generated_at")
    known = None
    if manifest is not None:
        known = set(manifest.get("nodes", {})) | set(manifest.get("unit_tests", {}))
    merged: dict[str, dict[str, Any]] = {}
    if previous is not None:
        for result in previous.get("results", []):
            if known is None or result.get("unique_id") in known:
                merged[result["unique_id"]] = result
    for result in current.get("results", []):
        merged[result["unique_id"]] = {**result, "built_at": built_at}
    return {**current, "results": list(merged.values())}


def _prepare_artifacts(settings: Settings, publish_id: str) -> dict[str, bytes]:
    """The artifacts to publish, or none when the build left none (e.g. a bare warehouse)."""
    target = settings.dbt_target_dir
    manifest_bytes = (
        (target / "manifest.json").read_bytes() if (target / "manifest.json").exists() else None
    )
    current = _read_json(target / "run_results.json")
    if manifest_bytes is None or current is None:
        return {}
    manifest = json.loads(manifest_bytes)
    previous = _read_json(settings.serving_path.parent / "run_results.json")
    merged = merge_run_results(current, previous, manifest)
    merged.setdefault("metadata", {})["contrail_publish_id"] = publish_id
    published = {
        "manifest.json": manifest_bytes,
        "run_results.json": json.dumps(merged).encode("utf-8"),
    }
    if (target / "sources.json").exists():  # the latest `dbt source freshness`, when one ran
        published["sources.json"] = (target / "sources.json").read_bytes()
    return published


def _prune_artifact_sets(root: Path, keep: str) -> None:
    sets = sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name != keep),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for stale in sets[KEEP_ARTIFACT_SETS - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)


def _stamp_snapshot(path: Path, publish_id: str, published_at: datetime, artifacts: bool) -> None:
    conn = connect_duckdb(path)
    try:
        conn.execute("create schema if not exists contrail_meta")
        conn.execute(
            "create or replace table contrail_meta.snapshot as select "
            "cast(? as varchar) as publish_id, cast(? as timestamp) as published_at, "
            "cast(? as boolean) as has_artifacts",
            [publish_id, published_at.replace(tzinfo=None), artifacts],
        )
        conn.execute("checkpoint")
    finally:
        conn.close()


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
    published_at = datetime.now(UTC)
    publish_id = f"{published_at:%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    artifacts = _prepare_artifacts(settings, publish_id)
    artifacts_root = settings.serving_artifacts_dir
    if artifacts:
        folder = artifacts_root / publish_id
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in artifacts.items():
            _write_atomically(folder / name, data)

    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temporary)
        _stamp_snapshot(temporary, publish_id, published_at, bool(artifacts))
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)
    for name, data in artifacts.items():
        _write_atomically(destination.parent / name, data)
    _fsync_dir(destination.parent)
    if artifacts:
        _prune_artifact_sets(artifacts_root, keep=publish_id)
    return destination
