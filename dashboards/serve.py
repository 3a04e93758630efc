"""Serve the dashboards: Streamlit, headless, on 127.0.0.1, with no outside connections.

Streamlit runs in its own process (``streamlit run dashboards/entry/app.py``) with usage statistics
off, the file watcher off and the address pinned, so it never contacts outside hosts. The app
finds the snapshot through ``CONTRAIL_DATA_DIR`` like every other Contrail command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ingestion.config import Settings
from ingestion.errors import ContrailError

APP = Path(__file__).parent / "entry" / "app.py"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8501


def streamlit_command(host: str, port: int) -> list[str]:
    """The `streamlit run` command line for the app."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--browser.gatherUsageStats=false",
        f"--browser.serverAddress={host}",
        f"--browser.serverPort={port}",
        "--global.developmentMode=false",
        "--client.toolbarMode=minimal",
        "--theme.base=light",
    ]


def streamlit_env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **settings.dbt_env()}
    env["CONTRAIL_DATA_DIR"] = str(settings.data_dir)
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env["DO_NOT_TRACK"] = "1"
    return env


def url(host: str, port: int) -> str:
    return f"http://{host}:{port}/"


def wait_healthy(host: str, port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until Streamlit answers /_stcore/health, or raise naming what went wrong."""
    deadline = time.monotonic() + timeout
    health = f"http://{host}:{port}/_stcore/health"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ContrailError(
                f"the dashboard server exited with status {process.returncode} before it was "
                f"ready (is port {port} already in use?)"
            )
        try:
            with urllib.request.urlopen(health, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise ContrailError(f"the dashboard server did not answer {health} within {timeout:.0f} s")


@contextmanager
def running_dashboard(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    timeout: float = 60.0,
    quiet: bool = True,
) -> Iterator[str]:
    """Start the dashboard server, yield its URL once healthy, and stop it on exit."""
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        streamlit_command(host, port), env=streamlit_env(settings), stdout=output, stderr=output
    )
    try:
        wait_healthy(host, port, process, timeout)
        yield url(host, port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_dashboard(
    settings: Settings, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> int:
    """Serve in the foreground until interrupted; returns Streamlit's exit status."""
    process = subprocess.Popen(streamlit_command(host, port), env=streamlit_env(settings))
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
