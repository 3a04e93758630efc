"""`make stream-demo`: the ingestion API, the micro-batch runner and a replay, together."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.progress import Reporter, SilentReporter
from ingestion.replay import ReplayResult, replay, synthetic_surveys
from ingestion.services import running_api, running_stream
from ingestion.warehouse import connect_duckdb

SETTLE_SECONDS = 90.0


@dataclass(frozen=True)
class DemoResult:
    replay: ReplayResult
    visible: int  # stream surveys in the published snapshot when the demo stopped


def _stream_surveys_published(settings: Settings) -> int:
    if not settings.serving_path.exists():
        return 0
    try:
        conn = connect_duckdb(settings.serving_path, read_only=True)
    except ContrailError:
        return 0
    try:
        row = conn.execute(
            "select count(*) from marts.fct_survey_responses where channel = 'stream'"
        ).fetchone()
        return int(row[0]) if row else 0
    except Exception:  # no marts yet: the first cycle has not published
        return 0
    finally:
        conn.close()


def stream_demo(
    settings: Settings,
    *,
    rate: float = 200.0,
    duration: float = 30.0,
    interval_s: float = 5.0,
    seed: int = 42,
    reporter: Reporter | None = None,
) -> DemoResult:
    """Start the API and the runner, replay synthetic surveys at ``rate`` for ``duration``
    seconds, wait until they are all visible in the snapshot (or a time limit), stop both."""
    reporter = reporter or SilentReporter()
    total = int(rate * duration)
    with (
        running_api(settings.data_dir, buffer_interval_s=1.0) as url,
        running_stream(settings.data_dir, interval_s=interval_s),
    ):
        sent = replay(
            settings,
            synthetic_surveys(total, seed),
            to="api",
            rate=rate,
            duration=duration + 5,
            batch_size=50,
            api_url=url,
            expected=total,
            reporter=reporter,
        )
        deadline = time.monotonic() + SETTLE_SECONDS
        visible = _stream_surveys_published(settings)
        with reporter.step("Waiting for the snapshot", sent.accepted, unit="surveys") as advance:
            while visible < sent.accepted and time.monotonic() < deadline:
                time.sleep(1.0)
                now = _stream_surveys_published(settings)
                advance(now - visible)
                visible = now
    return DemoResult(sent, visible)
