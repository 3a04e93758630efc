"""SIGKILL the stream runner mid-cycle, restart it, and find every survey in the marts once.

The runner runs in a subprocess that stops at a chosen point and announces it on stdout; the
test then kills it with SIGKILL and reruns the runner. Kill points: after the load, before the
build (the loaded events are in raw but not in any mart), and in the middle of a publish (half
of the new snapshot copied). Expected surveys are the events the test wrote.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ingestion.config import REPO_ROOT, Settings
from ingestion.events import envelope
from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory
from ingestion.stream import run_stream
from ingestion.warehouse import connect_duckdb

SURVEY: dict[str, Any] = {
    "satisfaction": "dissatisfied",
    "gender": "Male",
    "customer_type": "disloyal Customer",
    "type_of_travel": "Business travel",
    "travel_class": "Business",
    "flight_distance": 2200,
    "seat_comfort": 2,
    "departure_delay_minutes": 12,
}

# Runs one cycle and holds (sleeps) at the kill point after printing a marker.
DRIVER = r"""
import sys
import time
from dataclasses import replace
from pathlib import Path

from ingestion.config import Settings
from ingestion.stream import run_stream

data_dir, mode = Path(sys.argv[1]), sys.argv[2]
settings = replace(Settings.from_env({}), data_dir=data_dir)


def hold(marker):
    print(marker, flush=True)
    time.sleep(600)


def on_step(name):
    if mode == "before-build" and name == "build":
        hold("HOLDING before build")


if mode == "in-publish":
    import ingestion.publish as publish_module

    class HalfCopy:
        def copyfile(self, source, destination):
            data = Path(source).read_bytes()
            Path(destination).write_bytes(data[: len(data) // 2])
            hold("HOLDING in publish")

    publish_module.shutil = HalfCopy()

run_stream(settings, once=True, on_step=on_step)
print("FINISHED", flush=True)
"""


def write_events(settings: Settings, first: int, count: int, *, journal: str | None) -> set[str]:
    """``count`` events: half as a delivered object, half left in an orphaned journal (an API
    killed before delivering) when ``journal`` is given. Returns their survey ids."""
    submitted = datetime.now(UTC).replace(tzinfo=None)
    records = [
        json.dumps(
            envelope(
                {**SURVEY, "survey_id": f"SRV-C{n:06d}", "age": 18 + n % 70},
                event_id=f"crash-{n:06d}",
                submitted_at=submitted,
            )
        ).encode()
        for n in range(first, first + count)
    ]
    landing = LocalDirectory.for_settings(settings)
    split = count // 2 if journal else count
    landing.put_object(f"2026/03/01/20/crash-{first:06d}", b"".join(records[:split]))
    if journal:
        buffer = DeliveryBuffer(
            landing,
            DeliveryConfig(buffer_interval_s=3600),
            journal_dir=settings.data_dir / "journal" / journal,
        )
        buffer.add(records[split:])
        buffer.close()  # journaled, never delivered
    return {f"SRV-C{n:06d}" for n in range(first, first + count)}


def run_and_kill(settings: Settings, mode: str, marker: str, timeout: float = 90) -> str:
    """Start the driver, wait for ``marker`` on its stdout, SIGKILL it; returns its output."""
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(settings.data_dir), mode],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while marker.encode() not in output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {marker!r} within {timeout} s:\n{output.decode()[-3000:]}"
            ready, _, _ = select.select([proc.stdout], [], [], remaining)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                assert chunk, f"the runner exited before {marker!r}:\n{output.decode()[-3000:]}"
                output += chunk
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    return output.decode()


def survey_ids(path: Path, *, read_only: bool) -> list[str]:
    conn = connect_duckdb(path, read_only=read_only)
    try:
        rows = conn.execute("select survey_id from marts.fct_survey_responses").fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


def raw_count(settings: Settings, sql: str) -> int:
    conn = connect_duckdb(settings.warehouse_path)
    try:
        return int(conn.execute(sql).fetchall()[0][0])
    finally:
        conn.close()


def temporary_files(settings: Settings) -> list[Path]:
    """Snapshot copies in progress: beside the serving path, and in a run's slots folder."""
    folders = (settings.serving_path.parent, settings.serving_slots_dir)
    return sorted(p for folder in folders if folder.is_dir() for p in folder.glob(".*.tmp"))


@dataclass
class Crashes:
    settings: Settings
    written: list[set[str]] = field(default_factory=list)  # survey ids, per batch
    seen: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def crashes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crashes]:
    """Batch 1 published normally; batch 2 killed before its build; batch 3 killed mid-publish.
    What each step left behind is recorded in ``seen``."""
    settings = replace(Settings.from_env({}), data_dir=tmp_path_factory.mktemp("crash") / "d")
    state = Crashes(settings)
    seen = state.seen

    state.written.append(write_events(settings, 0, 40, journal=None))
    (seen["first"],) = run_stream(settings, once=True)

    # batch 2: killed after its load, before the build
    state.written.append(write_events(settings, 1000, 60, journal="api"))
    run_and_kill(settings, "before-build", "HOLDING before build")
    seen["raw_after_kill_1"] = raw_count(settings, "select count(*) from raw.survey_events")
    seen["cycles_after_kill_1"] = raw_count(settings, "select count(*) from raw.stream_cycles")
    seen["snapshot_after_kill_1"] = survey_ids(settings.serving_path, read_only=True)
    (seen["restart_1"],) = run_stream(settings, once=True)
    seen["snapshot_after_restart_1"] = survey_ids(settings.serving_path, read_only=True)

    # batch 3: killed halfway through copying the new snapshot
    state.written.append(write_events(settings, 2000, 50, journal="api"))
    run_and_kill(settings, "in-publish", "HOLDING in publish")
    serving = settings.serving_path
    seen["temp_files_after_kill_2"] = temporary_files(settings)
    seen["snapshot_after_kill_2"] = survey_ids(serving, read_only=True)
    (seen["restart_2"],) = run_stream(settings, once=True)
    seen["temp_files_after_restart_2"] = temporary_files(settings)
    seen["snapshot_after_restart_2"] = survey_ids(serving, read_only=True)
    yield state


def test_a_kill_between_load_and_build_loses_nothing(crashes: Crashes) -> None:
    batch1, batch2, _ = crashes.written
    seen = crashes.seen
    # the killed run had flushed the orphaned journal and loaded both halves of batch 2 ...
    assert seen["raw_after_kill_1"] == len(batch1) + len(batch2)
    # ... but built and published nothing: the snapshot still shows batch 1 only
    assert seen["cycles_after_kill_1"] == 1
    assert sorted(seen["snapshot_after_kill_1"]) == sorted(batch1)
    # the restart loads nothing new, yet builds and publishes what the killed run loaded
    restart = seen["restart_1"]
    assert (restart.objects_loaded, restart.build) == (0, "stream")
    assert restart.events_published == len(batch2)
    assert sorted(seen["snapshot_after_restart_1"]) == sorted(batch1 | batch2)


def test_a_kill_during_publish_keeps_the_old_snapshot_and_loses_nothing(crashes: Crashes) -> None:
    batch1, batch2, batch3 = crashes.written
    seen = crashes.seen
    assert len(seen["temp_files_after_kill_2"]) == 1  # the half-copied snapshot
    # readers still see the previous snapshot, whole
    assert sorted(seen["snapshot_after_kill_2"]) == sorted(batch1 | batch2)
    assert seen["temp_files_after_restart_2"] == []
    assert seen["restart_2"].build == "stream"
    # no survey lost and none twice
    assert sorted(seen["snapshot_after_restart_2"]) == sorted(batch1 | batch2 | batch3)


def test_every_event_landed_once_after_the_crashes(crashes: Crashes) -> None:
    settings = crashes.settings
    written = sum(len(batch) for batch in crashes.written)
    events = raw_count(settings, "select count(distinct event_id) from raw.survey_events")
    assert events == written
    journal = settings.data_dir / "journal" / "api"
    assert list(journal.glob("segment-*.journal")) == []  # every orphaned record was delivered
