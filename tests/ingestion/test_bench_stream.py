"""Stream benchmarks: the load generator and the API measurement, on loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.bench_stream import measure_api
from ingestion.firehose import LocalDirectory
from ingestion.loadgen import post_all, request_bytes
from ingestion.services import running_api


def test_load_generator_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        post_all("http://10.0.0.1:8000", [], concurrency=1, seconds=1)


def test_every_prepared_request_reaches_the_api_and_is_delivered(tmp_path: Path) -> None:
    body = (
        b'{"satisfaction":"satisfied","gender":"Male","customer_type":"Loyal Customer",'
        b'"age":30,"type_of_travel":"Business travel","travel_class":"Eco",'
        b'"flight_distance":500,"departure_delay_minutes":0}'
    )
    with running_api(tmp_path / "data", buffer_interval_s=0) as url:
        result = post_all(
            url, [request_bytes(url, "/v1/surveys", body)] * 40, concurrency=4, seconds=30
        )
    assert result.requests == 40
    assert result.statuses == {202: 40}
    objects = LocalDirectory(tmp_path / "data" / "landing" / "firehose")
    delivered = sum(objects.get_object(k).count(b'"event_id"') for k in objects.list_keys())
    assert delivered == 40


def test_measure_api_reports_both_rates_and_baselines(tmp_path: Path) -> None:
    figures = measure_api(tmp_path / "data", seconds=2, concurrency=4, singles=200, batches=4)
    assert set(figures) == {
        "api_single_rps",
        "api_single_baseline_per_s",
        "api_batch_surveys_per_s",
        "api_batch_baseline_per_s",
    }
    assert all(value > 0 for value in figures.values())


def test_cycle_cost_is_judged_by_how_it_grows_with_history() -> None:
    from ingestion.bench_stream import StreamBenchFigures

    def figures(small: float, large: float) -> StreamBenchFigures:
        return StreamBenchFigures(
            api_single_rps=2_000,
            api_single_baseline_per_s=100_000,
            api_batch_surveys_per_s=30_000,
            api_batch_baseline_per_s=150_000,
            firehose_load_records_per_s=120_000,
            freshness_p50_s=6,
            freshness_p95_s=11,
            cycle_s_small_history=small,
            cycle_s_large_history=large,
            full_build_s_small_history=10,
            full_build_s_large_history=90,
            small_history=100_000,
            large_history=5_000_000,
            cycle_build_s_small_history=small / 2,
            cycle_build_s_large_history=large / 2,
            cycle_publish_s_small_history=small / 4,
            cycle_publish_s_large_history=large / 4,
        )

    flat = figures(4.0, 6.0)
    assert all(met for *_, met in flat.checks())
    assert flat.as_dict()["cycle_ratio"] == 1.5
    growing = figures(4.0, 20.0)
    assert [m for m, _, _, met in growing.checks() if not met] == ["cycle cost, 50× the history"]
    measured = dict((m, value) for m, value, _, _ in growing.checks())
    assert measured["cycle of 5,000 events on 5,000,000 surveys"] == (
        "20.0 s (dbt 10.0 s, publish 5.0 s; full build 90.0 s)"
    )


@pytest.mark.slow
def test_measure_cycle_times_one_cycle_and_its_steps(tmp_path: Path) -> None:
    from dataclasses import replace

    from ingestion.bench_stream import measure_cycle
    from ingestion.config import Settings

    settings = replace(Settings.from_env({}), data_dir=tmp_path / "data")
    # raises unless 300 events land and the cycle's publish patched its snapshot slot
    cost = measure_cycle(settings, history=2_000, batch=300)

    assert cost.full_build_s > 0
    assert 0 < cost.build_s < cost.cycle_s
    assert 0 < cost.publish_s < cost.cycle_s
    assert cost.build_s + cost.publish_s <= cost.cycle_s
