"""Builds at the edges: empty raw tables build clean; a failing data test fails `dbt build`."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ingestion.schema import LOAD_AUDIT, SURVEY_RESPONSES

from .conftest import Warehouse

pytestmark = pytest.mark.slow

LOADED = datetime(2026, 4, 1, 6, 0, 0)


def test_empty_raw_tables_build_clean(duckdb_warehouse: Warehouse) -> None:
    duckdb_warehouse.load_raw([])
    result = duckdb_warehouse.dbt("build")
    assert result.returncode == 0, result.stdout[-4000:]
    counts = duckdb_warehouse.query(
        "select (select count(*) from marts.fct_survey_responses) as surveys, "
        "(select count(*) from marts.mart_satisfaction_by_segment) as segments, "
        "(select count(*) from marts.mart_daily_satisfaction) as days, "
        "(select count(*) from marts.dim_date) as dates"
    )
    assert counts == [{"surveys": 0, "segments": 0, "days": 0, "dates": 0}]


def test_bad_raw_rows_make_dbt_build_exit_non_zero(duckdb_warehouse: Warehouse) -> None:
    # The audit claims 2 rows loaded but only 1 landed, and that row rates a service 7.
    duckdb_warehouse.load_raw(
        [
            (
                LOAD_AUDIT,
                [
                    {
                        "batch_id": "batch-x",
                        "source_kind": "csv",
                        "source_file": "exports/x.csv",
                        "layout": "invistico",
                        "status": "loaded",
                        "rows_in_file": 2,
                        "rows_loaded": 2,
                        "rows_quarantined": 0,
                    }
                ],
            ),
            (
                SURVEY_RESPONSES,
                [
                    {
                        "batch_id": "batch-x",
                        "source_file": "exports/x.csv",
                        "source_line": 2,
                        "loaded_at": LOADED,
                        "survey_id": "SRV-X",
                        "customer_id": "CUS-X",
                        "flight_id": "AB100-2026-03-31",
                        "flight_date": datetime(2026, 3, 31).date(),
                        "origin_airport": "JFK",
                        "destination_airport": "LHR",
                        "survey_submitted_at": datetime(2026, 3, 31, 20, 0),
                        "satisfaction": "satisfied",
                        "gender": "Male",
                        "customer_type": "Loyal Customer",
                        "age": 40,
                        "type_of_travel": "Business travel",
                        "travel_class": "Business",
                        "seat_comfort": 7,
                        "departure_delay_minutes": 0,
                        "arrival_delay_minutes": 0,
                    }
                ],
            ),
        ]
    )
    result = duckdb_warehouse.dbt("build")
    assert result.returncode == 1, result.stdout[-4000:]
    run = json.loads((duckdb_warehouse.work_dir / "target" / "run_results.json").read_text())
    failed = {
        r["unique_id"].split(".")[2] for r in run["results"] if r["status"] in ("fail", "error")
    }
    assert failed == {
        "source_accepted_range_raw_survey_responses_seat_comfort__5__0",
        "assert_load_audit_reconciles",
    }
