"""A load killed part-way leaves nothing of its file; loading again lands it whole."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingestion.config import REPO_ROOT, PostgresSettings, Settings
from ingestion.layouts import INVISTICO_HEADER
from ingestion.load_csv import load_csv
from ingestion.warehouse import connect_postgres

ROWS = 40_000
CHUNK_ROWS = 1_000
KILL_AFTER_BLOCKS = 4


def _write_file(path: Path, rows: int, offset: int = 0) -> Path:
    classes = ("Eco", "Business", "Eco Plus")
    lines = [",".join(INVISTICO_HEADER)]
    for i in range(offset, offset + rows):
        ratings = ",".join(str((i + k) % 6) for k in range(14))
        lines.append(
            f"satisfied,Female,Loyal Customer,{18 + i % 60},Business travel,{classes[i % 3]},"
            f"{100 + i % 3000},{ratings},{i % 30},{i % 31}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


CHILD = """
import sys, time
from dataclasses import replace
from pathlib import Path
from ingestion.config import PostgresSettings, Settings
from ingestion.load_csv import load_csv

calls = 0

def progress(delta):
    global calls
    calls += 1
    if calls == {kill_after}:
        print("loading", flush=True)
    time.sleep(0.05)  # keep the load going long enough to be killed part-way

settings = replace(
    Settings.from_env({{}}),
    data_dir=Path({data_dir!r}),
    chunk_rows={chunk_rows},
    postgres=PostgresSettings(**{postgres!r}),
)
load_csv(Path({path!r}), settings, target={target!r}, progress=progress)
print("finished", flush=True)
"""


def _live_processes_mentioning(marker: str) -> list[int]:
    """Pids of running (not zombie) processes whose command line contains ``marker``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile
        if state != "Z" and marker.encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def _kill_mid_load(path: Path, settings: Settings, target: str) -> None:
    code = textwrap.dedent(CHILD).format(
        kill_after=KILL_AFTER_BLOCKS,
        data_dir=str(settings.data_dir),
        chunk_rows=CHUNK_ROWS,
        postgres=vars(settings.postgres),
        path=str(path),
        target=target,
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline().strip()
        assert first == "loading", f"the child did not start loading (said {first!r})"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    # The load's worker process (forked, so it shares the child's command line) must not
    # outlive it: it sees the loader's end of their pipe close and exits.
    marker = str(settings.data_dir)
    deadline = time.monotonic() + 15
    while (survivors := _live_processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in survivors:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes of the killed load still running: {survivors}"


def _counts_duckdb(settings: Settings, sha: str) -> tuple[int, int, int]:
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        return tuple(
            conn.execute(
                f"select count(*) from raw.{table} where file_sha256 = ?", [sha]
            ).fetchone()[0]
            for table in ("survey_responses", "quarantine", "load_audit")
        )


def _counts_postgres(settings: PostgresSettings, sha: str) -> tuple[int, int, int]:
    conn = connect_postgres(settings)
    try:
        with conn.cursor() as cur:
            counts = []
            for table in ("survey_responses", "quarantine", "load_audit"):
                cur.execute(f"select count(*) from raw.{table} where file_sha256 = %s", [sha])
                counts.append(cur.fetchone()[0])
            return tuple(counts)
    finally:
        conn.close()


def _crash_then_reload(tmp_path: Path, settings: Settings, target: str, counts) -> None:
    earlier = load_csv(_write_file(tmp_path / "earlier.csv", 50), settings, target=target)
    big = _write_file(tmp_path / "big.csv", ROWS, offset=7)
    sha = hashlib.sha256(big.read_bytes()).hexdigest()

    _kill_mid_load(big, settings, target)

    assert counts(sha) == (0, 0, 0)
    assert counts(earlier.file_sha256) == (50, 0, 1)
    again = load_csv(big, replace(settings, chunk_rows=CHUNK_ROWS), target=target)
    assert (again.status, again.rows_loaded, again.rows_quarantined) == ("loaded", ROWS, 0)
    assert counts(sha) == (ROWS, 0, 1)


def test_sigkill_mid_load_leaves_nothing_duckdb(tmp_path: Path, settings: Settings) -> None:
    _crash_then_reload(tmp_path, settings, "duckdb", lambda sha: _counts_duckdb(settings, sha))


@pytest.mark.postgres
def test_sigkill_mid_load_leaves_nothing_postgres(
    tmp_path: Path, settings: Settings, pg_settings: PostgresSettings
) -> None:
    settings = replace(settings, postgres=pg_settings)
    _crash_then_reload(
        tmp_path, settings, "postgres", lambda sha: _counts_postgres(pg_settings, sha)
    )
