"""Replaying survey rows as events, into the delivery directory."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.generate import generate_table
from ingestion.layouts import INVISTICO_HEADER
from ingestion.load_firehose import load_firehose
from ingestion.replay import csv_surveys, replay, synthetic_surveys
from ingestion.warehouse import connect_duckdb


def test_replayed_surveys_land_once_each_with_their_answers(settings: Settings) -> None:
    result = replay(settings, synthetic_surveys(1_200, seed=3), to="firehose-dir", batch_size=250)
    assert (result.sent, result.accepted, result.rejected) == (1_200, 1_200, 0)

    loaded = load_firehose(settings)
    assert (loaded.records, loaded.loaded, loaded.quarantined) == (1_200, 1_200, 0)

    source = generate_table(1_200, seed=3)
    expected_satisfied = sum(v == "satisfied" for v in source.column("satisfaction").to_pylist())
    expected_ages = sum(source.column("age").to_pylist())
    conn = connect_duckdb(settings.warehouse_path)
    try:
        row = conn.execute(
            "select count(*), count(distinct event_id), count(distinct survey_id), "
            "sum(case when satisfaction = 'satisfied' then 1 else 0 end), sum(age), "
            "count(inflight_service) from raw.survey_events"
        ).fetchone()
    finally:
        conn.close()
    assert row == (1_200, 1_200, 1_200, expected_satisfied, expected_ages, 0)


def test_rate_paces_and_duration_stops(settings: Settings) -> None:
    paced = replay(
        settings, synthetic_surveys(600, seed=1), to="firehose-dir", rate=2_000, batch_size=50
    )
    assert paced.sent == 600
    assert paced.seconds >= (600 - 50) / 2_000  # the last batch may go out at once

    stopped = replay(
        settings,
        synthetic_surveys(50_000, seed=2),
        to="firehose-dir",
        rate=1_000,
        duration=0.3,
        batch_size=50,
    )
    assert 50 <= stopped.sent < 1_000


def test_duration_counts_from_the_first_batch_not_from_preparing_it(settings: Settings) -> None:
    def slow_to_start() -> Iterator[dict[str, Any]]:
        time.sleep(0.5)  # e.g. generating or reading the first chunk of surveys
        yield from synthetic_surveys(200, seed=4)

    # At 200/s, batches of 50 go out at 0 s and 0.25 s; the next is due after the 0.3 s.
    result = replay(
        settings, slow_to_start(), to="firehose-dir", rate=200, duration=0.3, batch_size=50
    )
    assert 50 <= result.sent < 200


def test_csv_replay_skips_rows_the_loader_would_quarantine(
    settings: Settings, tmp_path: Path
) -> None:
    good = (
        "satisfied,Female,Loyal Customer,65,Personal Travel,Eco,265,0,0,0,2,2,4,2,3,3,0,3,5,3,2,0,0"
    )
    bad_age = good.replace(",65,", ",abc,")
    path = tmp_path / "export.csv"
    path.write_text("\n".join([",".join(INVISTICO_HEADER), good, bad_age, good]) + "\n")

    surveys = list(csv_surveys(path, settings))

    assert len(surveys) == 2
    assert surveys[0]["age"] == 65 and surveys[0]["travel_class"] == "Eco"
    assert "inflight_service" not in surveys[0]  # not asked by this layout


def test_unknown_destination_and_bad_batch_size_are_refused(settings: Settings) -> None:
    with pytest.raises(ContrailError, match="batch-size"):
        replay(settings, iter([]), to="firehose-dir", batch_size=501)
    with pytest.raises(ContrailError, match="unknown destination"):
        replay(settings, iter([]), to="kafka")  # type: ignore[arg-type]
