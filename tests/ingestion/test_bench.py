"""The benchmark runner: the keys it reports and how it judges targets."""

from __future__ import annotations

import pytest

from ingestion.bench import BenchFigures, run_benchmarks
from ingestion.config import Settings

KEYS = {
    "rows",
    "generate_rows_per_s",
    "enrich_rows_per_s",
    "enrich_baseline_rows_per_s",
    "load_rows_per_s",
    "dbt_build_s",
    "pipeline_s",
    "peak_rss_mb",
}


def _figures(**changes: float) -> BenchFigures:
    values = {
        "rows": 129_880,
        "generate_rows_per_s": 2e6,
        "enrich_rows_per_s": 2e6,
        "enrich_baseline_rows_per_s": 7_000.0,
        "load_rows_per_s": 6e5,
        "dbt_build_s": 8.0,
        "pipeline_s": 15.0,
        "peak_rss_mb": 500.0,
    }
    values.update(changes)
    return BenchFigures(**values)


def test_targets_met_and_missed_are_told_apart() -> None:
    assert all(met for *_, met in _figures().checks())

    missed = {
        measure
        for measure, _, _, met in _figures(
            load_rows_per_s=4e5, enrich_baseline_rows_per_s=25_000.0, pipeline_s=21.0
        ).checks()
        if not met
    }
    assert missed == {
        "load",
        "enrich vs naive Faker (same run)",
        "contrail run --no-serve --rows 129880",
    }
    assert (
        _figures(enrich_rows_per_s=2e6, enrich_baseline_rows_per_s=10_000.0).enrich_speedup == 200
    )


@pytest.mark.slow
def test_run_benchmarks_reports_every_key(settings: Settings) -> None:
    figures = run_benchmarks(settings, rows=3_000)

    report = figures.as_dict()
    assert set(report) == KEYS | {"enrich_speedup"}
    assert report["rows"] == 3_000
    assert all(report[key] > 0 for key in KEYS)
    assert report["pipeline_s"] > report["dbt_build_s"] * 0.5  # the pipeline includes a build
    assert not (settings.data_dir / "bench").exists(), "the scratch folder is removed"
