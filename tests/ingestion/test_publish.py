"""Publishing swaps a checkpointed copy of the warehouse into the serving path; a stream run's
publishes alternate between two slots and patch the older one."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import duckdb
import pytest

from ingestion.config import REPO_ROOT, Settings
from ingestion.errors import ContrailError
from ingestion.publish import SnapshotSlots, publish


def _write_warehouse(settings: Settings, values: list[int]) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(settings.warehouse_path))
    conn.execute("create schema if not exists marts")
    conn.execute("create or replace table marts.numbers (n integer)")
    conn.executemany("insert into marts.numbers values (?)", [(v,) for v in values])
    conn.close()


def _read_snapshot(settings: Settings) -> list[int]:
    conn = duckdb.connect(str(settings.serving_path), read_only=True)
    try:
        return [row[0] for row in conn.execute("select n from marts.numbers order by n").fetchall()]
    finally:
        conn.close()


def test_publish_copies_the_warehouse_to_the_serving_path(settings: Settings) -> None:
    _write_warehouse(settings, [3, 1, 2])

    path = publish(settings)

    assert path == settings.serving_path
    assert _read_snapshot(settings) == [1, 2, 3]
    assert not list(path.parent.glob("*.tmp")), "no temporary file may be left behind"


def test_publish_includes_changes_still_in_the_write_ahead_log(settings: Settings) -> None:
    _write_warehouse(settings, [1])
    writer = duckdb.connect(str(settings.warehouse_path))
    writer.execute("insert into marts.numbers values (42)")  # committed, not yet checkpointed
    try:
        publish(settings)
    finally:
        writer.close()

    assert _read_snapshot(settings) == [1, 42]


def test_republish_replaces_the_file_and_open_readers_keep_their_copy(
    settings: Settings, tmp_path
) -> None:
    _write_warehouse(settings, [1])
    publish(settings)
    old_inode = settings.serving_path.stat().st_ino
    # A reader in another process would hold the old file; hold it here through a descriptor.
    with open(settings.serving_path, "rb") as held:
        old_bytes_hash = hashlib.sha256(held.read()).hexdigest()
        _write_warehouse(settings, [1, 2])
        publish(settings)
        held.seek(0)
        assert hashlib.sha256(held.read()).hexdigest() == old_bytes_hash

    assert settings.serving_path.stat().st_ino != old_inode
    assert _read_snapshot(settings) == [1, 2]


def test_publish_without_a_warehouse_names_the_missing_file(settings: Settings) -> None:
    with pytest.raises(ContrailError, match=r"warehouse\.duckdb: no warehouse to publish"):
        publish(settings)


def _write_artifacts(
    settings: Settings, nodes: list[str], results: dict[str, str], at: str
) -> None:
    target = settings.dbt_target_dir
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps({"nodes": {n: {} for n in nodes}}))
    (target / "run_results.json").write_text(
        json.dumps(
            {
                "metadata": {"generated_at": at},
                "results": [{"unique_id": n, "status": s} for n, s in results.items()],
            }
        )
    )


def _snapshot_publish_id(settings: Settings) -> str:
    conn = duckdb.connect(str(settings.serving_path), read_only=True)
    try:
        return conn.execute("select publish_id from contrail_meta.snapshot").fetchone()[0]
    finally:
        conn.close()


def test_publish_pairs_the_snapshot_with_its_build_artifacts(settings: Settings) -> None:
    _write_warehouse(settings, [1])
    _write_artifacts(settings, ["model.a", "test.t1"], {"model.a": "success"}, "T1")
    publish(settings)
    first_id = _snapshot_publish_id(settings)
    first_folder = settings.serving_artifacts_dir / first_id
    assert json.loads((first_folder / "manifest.json").read_text())["nodes"].keys() == {
        "model.a",
        "test.t1",
    }

    # A micro-batch build runs only some nodes; a node that left the manifest is dropped.
    _write_warehouse(settings, [1, 2])
    _write_artifacts(settings, ["model.a", "test.t2"], {"test.t2": "pass"}, "T2")
    (settings.dbt_target_dir / "run_results.json").write_text(
        json.dumps({"metadata": {"generated_at": "T2"}, "results": []})
    )
    publish(settings)
    _write_artifacts(settings, ["model.a", "test.t2"], {"test.t2": "fail"}, "T3")
    publish(settings)

    second_id = _snapshot_publish_id(settings)
    assert second_id != first_id
    merged = json.loads(
        (settings.serving_artifacts_dir / second_id / "run_results.json").read_text()
    )
    by_id = {r["unique_id"]: (r["status"], r["built_at"]) for r in merged["results"]}
    assert by_id == {"model.a": ("success", "T1"), "test.t2": ("fail", "T3")}
    beside = json.loads((settings.serving_path.parent / "run_results.json").read_text())
    assert beside == merged
    assert (first_folder / "manifest.json").exists(), "older sets are kept for open readers"


# --- a stream run's slots ----------------------------------------------------------------------


def _slot_publish(settings: Settings, slots: SnapshotSlots, values: list[int], **kw) -> bool:
    _write_warehouse(settings, values)
    publish(settings, slots, incremental=kw.get("incremental", True))
    assert _read_snapshot(settings) == sorted(values)
    assert _snapshot_publish_id(settings) == _slot_publish_id(slots.path(slots.history[-1].slot))
    return slots.history[-1].patched


def _slot_publish_id(path) -> str:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return conn.execute("select publish_id from contrail_meta.snapshot").fetchone()[0]
    finally:
        conn.close()


def test_a_run_copies_its_first_two_snapshots_then_patches_the_older_slot(
    settings: Settings,
) -> None:
    slots = SnapshotSlots(settings)
    patched = [_slot_publish(settings, slots, list(range(n))) for n in (1, 2, 3, 4)]
    assert patched == [False, False, True, True]
    assert [p.slot for p in slots.history] == ["a", "b", "a", "b"]
    # the serving path is the slot published last, under another name
    assert settings.serving_path.stat().st_ino == slots.path("b").stat().st_ino
    assert not list(settings.serving_path.parent.glob(".*.tmp"))


def test_a_full_build_makes_the_next_two_publishes_copy(settings: Settings) -> None:
    slots = SnapshotSlots(settings)
    for n in (1, 2):
        _slot_publish(settings, slots, list(range(n)))
    assert _slot_publish(settings, slots, [5], incremental=False) is False
    assert _slot_publish(settings, slots, [5, 6]) is False  # slot b predates the full build
    assert _slot_publish(settings, slots, [5, 6, 7]) is True  # slot a was written after it


def test_a_slot_that_is_not_the_one_the_run_wrote_is_copied(settings: Settings) -> None:
    slots = SnapshotSlots(settings)
    for n in (1, 2):
        _slot_publish(settings, slots, list(range(n)))
    conn = duckdb.connect(str(slots.path("a")))
    conn.execute("update contrail_meta.snapshot set publish_id = 'someone else'")
    conn.close()
    assert _slot_publish(settings, slots, [9, 8]) is False


HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(60)
"""


def test_a_reader_of_the_older_slot_makes_the_publish_copy_and_keeps_its_data(
    settings: Settings,
) -> None:
    slots = SnapshotSlots(settings)
    slots.lock_wait_s = 0.3
    _slot_publish(settings, slots, [1])
    # a reader opens the snapshot (slot a) and is still reading after the next publish
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.serving_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "holding"
        _slot_publish(settings, slots, [1, 2])
        assert _slot_publish(settings, slots, [1, 2, 3]) is False
    finally:
        reader.kill()
        reader.wait()
    assert _slot_publish(settings, slots, [1, 2, 3, 4]) is True


def test_a_batch_publish_removes_a_runs_slots(settings: Settings) -> None:
    slots = SnapshotSlots(settings)
    for n in (1, 2):
        _slot_publish(settings, slots, list(range(n)))
    _write_warehouse(settings, [7])
    publish(settings)
    assert _read_snapshot(settings) == [7]
    assert list(settings.serving_slots_dir.iterdir()) == []


KILLED_IN_PATCH = """
import sys, time
from dataclasses import replace
from pathlib import Path

import duckdb

import ingestion.publish as publish_module
from ingestion.config import Settings
from ingestion.publish import SnapshotSlots, publish

settings = replace(Settings.from_env({}), data_dir=Path(sys.argv[1]))
slots = SnapshotSlots(settings)


def write(values):
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(settings.warehouse_path))
    conn.execute("create schema if not exists marts")
    conn.execute("create or replace table marts.numbers (n integer)")
    conn.executemany("insert into marts.numbers values (?)", [(v,) for v in values])
    conn.close()


for values in ([1], [1, 2]):
    write(values)
    publish(settings, slots, incremental=True)
real_stamp = publish_module._write_stamp


def stamp_then_hold(conn, catalog, *args):
    real_stamp(conn, catalog, *args)  # the patch is written, not committed
    print("HOLDING in patch", flush=True)
    time.sleep(600)


publish_module._write_stamp = stamp_then_hold
write([1, 2, 3])
publish(settings, slots, incremental=True)
"""


def test_a_kill_in_the_middle_of_a_patch_keeps_the_snapshot_and_the_next_run_copies(
    settings: Settings,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_IN_PATCH, str(settings.data_dir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "HOLDING in patch"
    finally:
        proc.kill()
        proc.wait()
    assert _read_snapshot(settings) == [1, 2]  # readers see the previous publish, whole

    slots = SnapshotSlots(settings)  # a restarted run
    patched = [_slot_publish(settings, slots, v) for v in ([1, 2, 3], [1, 2, 3, 4], [5])]
    assert patched == [False, False, True]
