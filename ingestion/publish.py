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

A stream run publishes through two slot files instead (``SnapshotSlots``): the serving path is
a hard link to the slot published last, and each publish patches the other slot with what
changed (``ingestion.snapshot_patch``) before linking it into place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.snapshot_patch import (
    LOCK_WAIT_S,
    SLOT,
    PatchReport,
    attach_slot,
    delta_rules,
    detach_slot,
    patch_slot,
)
from ingestion.warehouse import connect_duckdb

log = logging.getLogger(__name__)

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


def _write_stamp(
    conn: duckdb.DuckDBPyConnection,
    catalog: str,
    publish_id: str,
    published_at: datetime,
    artifacts: bool,
) -> None:
    """Record the publish in ``catalog``'s ``contrail_meta.snapshot`` (what readers key on)."""
    conn.execute(f'create schema if not exists "{catalog}".contrail_meta')
    conn.execute(
        f'create or replace table "{catalog}".contrail_meta.snapshot as select '
        "cast(? as varchar) as publish_id, cast(? as timestamp) as published_at, "
        "cast(? as boolean) as has_artifacts",
        [publish_id, published_at.replace(tzinfo=None), artifacts],
    )


def _stamp_snapshot(path: Path, publish_id: str, published_at: datetime, artifacts: bool) -> None:
    conn = connect_duckdb(path)
    try:
        catalog = conn.execute("select current_database()").fetchone()[0]
        _write_stamp(conn, catalog, publish_id, published_at, artifacts)
        conn.execute("checkpoint")
    finally:
        conn.close()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _copy_snapshot(
    source: Path, destination: Path, publish_id: str, published_at: datetime, artifacts: bool
) -> None:
    """Copy the checkpointed warehouse, stamp it, and swap it in at ``destination``."""
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(source, temporary)
        _stamp_snapshot(temporary, publish_id, published_at, artifacts)
        _fsync_file(temporary)
        # A write-ahead log left beside the destination belongs to the file being replaced.
        destination.with_name(destination.name + ".wal").unlink(missing_ok=True)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
        temporary.with_name(temporary.name + ".wal").unlink(missing_ok=True)


def publish(
    settings: Settings, slots: SnapshotSlots | None = None, *, incremental: bool = False
) -> Path:
    """Checkpoint the DuckDB warehouse and swap a copy into the serving path. Returns that path.

    With ``slots`` (a stream run's), the snapshot is published through them, patched rather
    than copied when ``incremental`` (the build since the last publish was a stream cycle's)
    and the slot allows it; see ``SnapshotSlots``.
    """
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

    if slots is None:
        _copy_snapshot(source, destination, publish_id, published_at, bool(artifacts))
        remove_slots(settings)  # a session's slots no longer hold what readers see
    else:
        slots.publish(source, publish_id, published_at, bool(artifacts), incremental=incremental)
    for name, data in artifacts.items():
        _write_atomically(destination.parent / name, data)
    _fsync_dir(destination.parent)
    if artifacts:
        _prune_artifact_sets(artifacts_root, keep=publish_id)
    return destination


def remove_slots(settings: Settings) -> None:
    """Delete a stream run's slot files (readers that have one open keep reading it)."""
    folder = settings.serving_slots_dir
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file():
                path.unlink(missing_ok=True)


def _link_into_place(slot: Path, destination: Path) -> None:
    """Make ``destination`` another name of ``slot``'s file, atomically."""
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.link.tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(slot, temporary)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class SlotPublish:
    """How one publish through the slots went."""

    slot: str
    patched: bool
    report: PatchReport | None = None


class SnapshotSlots:
    """A stream run's snapshots, published through two slot files that take turns.

    The serving path is a hard link to the slot published last; the other slot holds the
    snapshot before it, which no new reader can open. A publish brings that other slot up to
    the warehouse and links it into place:

    - by a patch (``ingestion.snapshot_patch``) when this run wrote the slot and every build
      since was an incremental one (a stream cycle, or the health mart), so the slot differs
      from the warehouse only by what cycles change;
    - by a whole-file copy otherwise: the run's first two publishes, after a full build, when
      readers still hold the slot open after a short wait (DuckDB's file lock says so), or when
      the slot's stamp is not the one this run wrote.

    The state lives in this object only: a restarted runner starts with copies, so nothing
    a killed publish left half done is ever patched.
    """

    NAMES = ("a", "b")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.serving_slots_dir
        self._publishes = 0
        self._written: dict[str, tuple[int, str]] = {}  # slot -> (publish number, publish_id)
        self._last_full = 0  # the number of the last publish after a non-incremental build
        self._current: str | None = None
        self.history: list[SlotPublish] = []
        self.lock_wait_s = LOCK_WAIT_S  # how long a patch waits for readers of its slot

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.duckdb"

    def _next(self) -> str:
        return self.NAMES[1] if self._current == self.NAMES[0] else self.NAMES[0]

    def _patchable(self, name: str) -> str | None:
        """The publish_id the slot should hold when it may be patched, else None."""
        written = self._written.get(name)
        if written is None or written[0] < self._last_full:
            return None
        return written[1]

    def publish(
        self,
        source: Path,
        publish_id: str,
        published_at: datetime,
        artifacts: bool,
        *,
        incremental: bool,
    ) -> SlotPublish:
        self._publishes += 1
        if not incremental:
            self._last_full = self._publishes
        name = self._next()
        slot = self.path(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        report = None
        expected = self._patchable(name)
        if expected is not None:
            report = self._patch(source, slot, expected, publish_id, published_at, artifacts)
        if report is None:
            _copy_snapshot(source, slot, publish_id, published_at, artifacts)
        _link_into_place(slot, self.settings.serving_path)
        self._written[name] = (self._publishes, publish_id)
        self._current = name
        outcome = SlotPublish(name, report is not None, report)
        self.history.append(outcome)
        return outcome

    def _patch(
        self,
        source: Path,
        slot: Path,
        expected: str,
        publish_id: str,
        published_at: datetime,
        artifacts: bool,
    ) -> PatchReport | None:
        """Patch ``slot`` in place; None (copy it instead) when that cannot be done safely."""
        if not slot.exists():
            return None
        manifest = _read_json(self.settings.dbt_target_dir / "manifest.json")
        conn = connect_duckdb(source)
        try:
            if not attach_slot(conn, slot, self.lock_wait_s):
                log.info("%s: readers still hold it open; copying the snapshot instead", slot)
                return None
            try:
                stamp = conn.execute(
                    f"select publish_id from {SLOT}.contrail_meta.snapshot"
                ).fetchone()
                if stamp is None or stamp[0] != expected:
                    log.warning("%s: not the snapshot this run wrote; copying instead", slot)
                    return None
                report = patch_slot(
                    conn,
                    delta_rules(manifest),
                    lambda c, catalog: _write_stamp(
                        c, catalog, publish_id, published_at, artifacts
                    ),
                )
                conn.execute(f"checkpoint {SLOT}")
            except duckdb.Error as exc:  # the transaction rolled back; the copy is always right
                log.warning("%s: patching failed (%s); copying the snapshot instead", slot, exc)
                return None
            finally:
                detach_slot(conn)
        finally:
            conn.close()
        wal = slot.with_name(slot.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise ContrailError(f"{wal}: the patched snapshot kept changes in its log")
        _fsync_file(slot)
        return report
