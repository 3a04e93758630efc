"""The API as a real uvicorn process on 127.0.0.1: HTTP end to end, and durability under SIGKILL."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingestion.api_server import default_journal_dir, serve_api
from ingestion.config import REPO_ROOT, Settings
from ingestion.errors import ContrailError
from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory
from tests.ingestion.api.conftest import API_KEY, make_survey

AUTH = {"X-API-Key": API_KEY}

SERVER = """
import sys
from pathlib import Path
from ingestion.api_server import serve_api
from ingestion.config import Settings
serve_api(Settings(data_dir=Path(sys.argv[1])), host="127.0.0.1", port=0,
          buffer_interval_s=3600, buffer_size_mib=5, api_keys=[sys.argv[2]])
"""


class Server:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url


def start_server(data_dir: Path) -> Server:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(data_dir), API_KEY],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        if not selector.select(timeout=deadline - time.monotonic()):
            break
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].strip()
            for _ in range(100):  # wait until uvicorn accepts connections
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        return Server(process, url)
                except httpx.TransportError:
                    time.sleep(0.05)
            break
    process.kill()
    raise AssertionError("the API did not start:\n" + "".join(lines))


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def delivered_events(data_dir: Path) -> list[dict[str, Any]]:
    """Every record of every delivery object, read with a plain JSON decoder."""
    root = data_dir / "landing" / "firehose"
    decoder = json.JSONDecoder()
    events = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        position = 0
        while position < len(text):
            event, position = decoder.raw_decode(text, position)
            events.append(event)
    return events


def test_real_http_post_lookup_metrics_and_graceful_shutdown_delivers(data_dir: Path):
    server = start_server(data_dir)
    try:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http:
            single = http.post("/v1/surveys", json=make_survey(age=29))
            batch = http.post("/v1/surveys", json=[make_survey(age=30), {"age": 1}])
            unauthorised = http.post("/v1/surveys", json=make_survey(), headers={"X-API-Key": ""})
            lookup = http.get("/v1/surveys/anything")
            metrics = http.get("/metrics").text
    finally:
        server.process.send_signal(signal.SIGTERM)
        output, _ = server.process.communicate(timeout=30)

    assert single.status_code == 202
    assert batch.status_code == 207
    assert unauthorised.status_code == 401
    assert lookup.status_code == 503
    assert "contrail_api_surveys_accepted_total 2" in metrics
    assert "contrail_api_buffered_records 2" in metrics
    assert server.process.returncode == 0, output
    # The interval is an hour: only the shutdown flush can have delivered them.
    accepted = {single.json()["event_id"], batch.json()["results"][0]["event_id"]}
    assert {e["event_id"] for e in delivered_events(data_dir)} == accepted


def test_a_202_survives_sigkill(data_dir: Path):
    server = start_server(data_dir)
    surveys = [make_survey(age=20 + i) for i in range(5)]
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as http:
        responses = [http.post("/v1/surveys", json=s) for s in surveys[:2]]
        responses.append(http.post("/v1/surveys", json=surveys[2:]))
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.communicate(timeout=30)

    assert [r.status_code for r in responses] == [202, 202, 202]
    assert delivered_events(data_dir) == []  # nothing was delivered before the kill
    event_ids = [r.json()["event_id"] for r in responses[:2]]
    event_ids += [item["event_id"] for item in responses[2].json()["results"]]

    settings = Settings(data_dir=data_dir)
    with DeliveryBuffer(
        LocalDirectory.for_settings(settings),
        DeliveryConfig(),
        journal_dir=default_journal_dir(settings),
    ) as buffer:
        assert buffer.recovery.records == 5
        keys = buffer.flush()
    assert len(keys) == 1
    events = delivered_events(data_dir)
    assert [e["event_id"] for e in events] == event_ids
    assert [e["survey"]["age"] for e in events] == [20, 21, 22, 23, 24]


def test_serve_api_refuses_to_start_without_keys(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(ContrailError, match="no API keys configured"):
        serve_api(settings, port=0, api_keys=[])
    assert not (tmp_path / "data").exists()
