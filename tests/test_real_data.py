"""Correctness on real data: the public Invistico prefix, loaded and built on DuckDB and
PostgreSQL, checked against figures computed here straight from the CSV."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ingestion.config import PostgresSettings, Settings
from ingestion.layouts import INVISTICO
from ingestion.load_csv import load_csv
from ingestion.pipeline import build
from ingestion.warehouse import connect_duckdb, connect_postgres

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def _expected(path: Path) -> dict[str, Any]:
    """Figures from the CSV with the csv module, independent of the loader and the models."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_class: dict[str, Counter[str]] = defaultdict(Counter)
    sums: dict[str, list[int]] = {}
    for row in rows:
        by_class[row["Class"]][row["satisfaction"]] += 1
        for header, column in INVISTICO.columns.items():
            if column in {
                "satisfaction",
                "gender",
                "customer_type",
                "age",
                "type_of_travel",
                "travel_class",
                "flight_distance",
                "departure_delay_minutes",
                "arrival_delay_minutes",
            }:
                continue
            value = int(row[header])
            if value != 0:
                sums.setdefault(column, [0, 0])
                sums[column][0] += value
                sums[column][1] += 1
    return {
        "rows": len(rows),
        "satisfied": sum(r["satisfaction"] == "satisfied" for r in rows),
        "class_rates": {
            cls.lower(): counts["satisfied"] / sum(counts.values())
            for cls, counts in by_class.items()
        },
        "null_arrival_delays": sum(r["Arrival Delay in Minutes"] == "" for r in rows),
        "mean_ratings": {column: total / n for column, (total, n) in sums.items()},
    }


def _query(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    cursor.execute(sql)
    rows = list(cursor.fetchall())
    cursor.close()
    return rows


@pytest.fixture(params=["duckdb", "postgres"])
def target_settings(request: pytest.FixtureRequest, settings: Settings) -> tuple[str, Settings]:
    if request.param == "postgres":
        pg: PostgresSettings = request.getfixturevalue("pg_settings")
        return "postgres", replace(settings, postgres=pg)
    return "duckdb", settings


def test_invistico_prefix_marts_match_the_csv(
    invistico_head: Path, target_settings: tuple[str, Settings]
) -> None:
    target, settings = target_settings
    expected = _expected(invistico_head)
    assert expected["rows"] == 37_955 and expected["satisfied"] == 16_984  # the data's README

    loaded = load_csv(invistico_head, settings, target=target)
    build(settings, target=target)

    assert (loaded.rows_in_file, loaded.rows_loaded, loaded.rows_quarantined) == (37_955, 37_955, 0)
    if target == "duckdb":
        conn: Any = connect_duckdb(settings.serving_path, read_only=True)
    else:
        conn = connect_postgres(settings.postgres)
    try:
        overall = _query(
            conn,
            "select responses, satisfied, satisfaction_rate from marts.mart_satisfaction_by_segment"
            " where segment_type = 'overall'",
        )
        assert overall[0][:2] == (expected["rows"], expected["satisfied"])
        assert float(overall[0][2]) == pytest.approx(expected["satisfied"] / expected["rows"])

        classes = dict(
            _query(
                conn,
                "select segment_value, satisfaction_rate from marts.mart_satisfaction_by_segment"
                " where segment_type = 'travel_class'",
            )
        )
        assert {k: float(v) for k, v in classes.items()} == pytest.approx(expected["class_rates"])

        null_delays = _query(
            conn,
            "select count(*) from marts.fct_survey_responses where arrival_delay_minutes is null",
        )
        assert null_delays[0][0] == expected["null_arrival_delays"] == 137

        means = dict(_query(conn, "select service, mean_rating from marts.mart_service_drivers"))
        got = {k: float(v) for k, v in means.items() if v is not None}
        assert got == pytest.approx(expected["mean_ratings"], rel=1e-6)
        assert "inflight_service" not in got  # Invistico does not ask it: NULL, never 0

        audit = _query(
            conn,
            "select rows_in_file, rows_loaded, rows_quarantined from raw.load_audit",
        )
        assert audit == [(37_955, 37_955, 0)]
        facts = _query(
            conn, "select count(*), count(distinct survey_id) from marts.fct_survey_responses"
        )
        assert facts[0] == (37_955, 37_955)
    finally:
        conn.close()
