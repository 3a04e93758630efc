"""Publishing swaps a checkpointed copy of the warehouse into the serving path."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.publish import publish


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
