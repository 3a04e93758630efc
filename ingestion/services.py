"""Start Contrail's long-running services as child processes, for the demo and benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestion.errors import ContrailError

START_SECONDS = 60.0
STOP_SECONDS = 60.0


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ingestion.cli", *args]


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM (both services finish their current step and exit), then SIGKILL if stuck."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def running_api(data_dir: Path, *, buffer_interval_s: float = 1.0) -> Iterator[str]:
    """Run `contrail serve-api` without auth on a free loopback port; yields its base URL."""
    env = {**os.environ, "CONTRAIL_DATA_DIR": str(data_dir)}
    command = _cli(
        "serve-api",
        "--port",
        "0",
        "--insecure-no-auth",
        "--buffer-interval",
        str(buffer_interval_s),
    )
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        url = None
        deadline = time.monotonic() + START_SECONDS
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "listening on " in line:
                url = line.split("listening on ", 1)[1].strip()
                break
        if url is None:
            raise ContrailError(f"the ingestion API did not start (exit code {process.poll()})")
        yield url
    finally:
        _stop(process)


@contextmanager
def running_stream(data_dir: Path, *, interval_s: float = 5.0) -> Iterator[subprocess.Popen[str]]:
    """Run `contrail stream run` in the background, its cycle lines passed through to stderr
    (stdout stays clean for `contrail bench --stream --json`)."""
    env = {**os.environ, "CONTRAIL_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        _cli("stream", "run", "--interval", str(interval_s)), env=env, text=True, stdout=sys.stderr
    )
    try:
        yield process
    finally:
        _stop(process)
