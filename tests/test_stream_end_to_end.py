"""The stream path end to end: the real API over HTTP, replay, the runner, the published marts.

`contrail serve-api` runs as a subprocess on 127.0.0.1 with its data directory in a temporary
folder; a few thousand synthetic surveys are replayed to it in batches; once the API has
delivered its buffer, one runner cycle (`run_stream(once=True)`) loads, builds and publishes.
The marts in the published snapshot must equal a computation on the replayed surveys.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingestion.config import REPO_ROOT, Settings
from ingestion.replay import replay, synthetic_surveys
from ingestion.schema import RATING_COLUMNS
from ingestion.stream import run_stream
from ingestion.warehouse import connect_duckdb

pytestmark = pytest.mark.slow

SURVEYS = 3_000
SEED = 20_260_301
CLASSES = {"Eco": "eco", "Eco Plus": "eco plus", "Business": "business"}


@dataclass
class Api:
    process: subprocess.Popen[str]
    url: str
    output: list[str]


def start_api(data_dir: Path) -> Api:
    env = {**os.environ, "CONTRAIL_DATA_DIR": str(data_dir)}
    env.pop("CONTRAIL_API_KEYS", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ingestion.cli",
            "serve-api",
            "--port",
            "0",
            "--insecure-no-auth",
            "--buffer-interval",
            "1",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and selector.select(timeout=deadline - time.monotonic()):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].strip()
            for _ in range(200):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        return Api(process, url, lines)
                except httpx.TransportError:
                    time.sleep(0.05)
            break
    process.kill()
    process.wait()
    raise AssertionError("the API did not start:\n" + "".join(lines))


def wait_until_delivered(data_dir: Path, timeout: float = 30) -> None:
    """The API delivers its buffer within about a second (--buffer-interval 1); a delivered
    generation's journal segment is deleted."""
    journal = data_dir / "journal" / "api"
    deadline = time.monotonic() + timeout
    while list(journal.glob("segment-*.journal")):
        assert time.monotonic() < deadline, "the API did not deliver its buffer"
        time.sleep(0.1)


@dataclass
class Run:
    settings: Settings
    surveys: list[dict[str, Any]]
    accepted: int
    cycles: list[Any]


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    data_dir.mkdir()
    settings = replace(Settings.from_env({}), data_dir=data_dir)
    surveys = list(synthetic_surveys(SURVEYS, SEED))
    api = start_api(data_dir)
    try:
        sent = replay(settings, iter(surveys), to="api", api_url=api.url, batch_size=500)
        wait_until_delivered(data_dir)
        # the API is still running: its journal is locked and left to it
        cycles = run_stream(settings, once=True)
    finally:
        api.process.send_signal(signal.SIGTERM)
        try:
            api.process.wait(timeout=30)
        finally:
            if api.process.poll() is None:
                api.process.kill()
    yield Run(settings, surveys, sent.accepted, cycles)


def snapshot(run: Run, sql: str) -> list[dict[str, Any]]:
    conn = connect_duckdb(run.settings.serving_path, read_only=True)
    try:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        conn.close()


def test_every_replayed_survey_is_accepted_loaded_and_published(streamed: Run) -> None:
    assert streamed.accepted == SURVEYS
    (cycle,) = streamed.cycles
    assert (cycle.records_loaded, cycle.records_quarantined) == (SURVEYS, 0)
    assert cycle.events_published == SURVEYS and cycle.recorded
    # freshness is measured from acceptance by the API to the publish, both within this test
    assert 0 < cycle.freshness.p50_s <= cycle.freshness.p95_s <= cycle.freshness.max_s < 600
    rows = snapshot(
        streamed,
        "select count(*) as n, count(distinct survey_id) as d from marts.fct_survey_responses",
    )
    assert rows == [{"n": SURVEYS, "d": SURVEYS}]


def test_overall_and_per_class_satisfaction_match_the_replayed_surveys(streamed: Run) -> None:
    rows = snapshot(
        streamed,
        "select segment_type, segment_value, responses, satisfied, satisfaction_rate "
        "from marts.mart_satisfaction_by_segment "
        "where segment_type in ('overall', 'travel_class')",
    )
    got = {(r["segment_type"], r["segment_value"]): r for r in rows}
    expected: dict[tuple[str, str], list[int]] = {("overall", "all"): [0, 0]}
    for survey in streamed.surveys:
        satisfied = int(survey["satisfaction"] == "satisfied")
        for key in (("overall", "all"), ("travel_class", CLASSES[survey["travel_class"]])):
            counts = expected.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += satisfied
    assert set(got) == set(expected)
    for key, (responses, satisfied) in expected.items():
        assert (got[key]["responses"], got[key]["satisfied"]) == (responses, satisfied), key
        assert got[key]["satisfaction_rate"] == pytest.approx(satisfied / responses)


def test_mean_service_ratings_exclude_not_applicable(streamed: Run) -> None:
    rows = snapshot(streamed, "select service, mean_rating from marts.mart_service_drivers")
    got = {r["service"]: r["mean_rating"] for r in rows}
    checked = 0
    for service in RATING_COLUMNS:
        scores = [s[service] for s in streamed.surveys if s.get(service)]  # 0 and missing out
        if not scores:
            assert got.get(service) is None, service
            continue
        assert got[service] == pytest.approx(sum(scores) / len(scores)), service
        checked += 1
    assert checked >= 14  # every service the synthetic layout rates
