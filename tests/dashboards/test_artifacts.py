"""dbt artifacts as relations pages can query."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from dashboards.artifacts import run_results_frame, source_freshness_frame

RUN_RESULTS = {
    "results": [
        {
            "unique_id": "test.contrail.not_null_fct_survey_responses_survey_id.a1b2c3",
            "status": "pass",
            "failures": 0,
            "message": None,
            "execution_time": 0.25,
            "built_at": "2026-03-01T20:00:00.123Z",
        },
        {
            "unique_id": "unit_test.contrail.fct_survey_responses.test_delay_bands",
            "status": "fail",
            "failures": 2,
            "message": "2 rows differ",
            "execution_time": 0.5,
        },
        {"unique_id": "model.contrail.fct_survey_responses", "status": "success"},
    ]
}

SOURCES = {
    "results": [
        {
            "unique_id": "source.contrail.raw.survey_events",
            "max_loaded_at": "0001-01-01T00:00:00+00:00",  # dbt's way of saying "no rows"
            "snapshotted_at": "2026-03-01T20:00:00+00:00",
            "max_loaded_at_time_ago_in_s": 63931918848.9,
            "status": "warn",
            "criteria": {
                "warn_after": {"count": 24, "period": "hour"},
                "error_after": {"count": None, "period": None},
            },
        },
        {
            "unique_id": "source.contrail.raw.survey_responses",
            "max_loaded_at": "2026-03-01T19:58:30+01:00",
            "snapshotted_at": "2026-03-01T20:00:00+00:00",
            "max_loaded_at_time_ago_in_s": 3690.0,
            "status": "pass",
            "criteria": {"warn_after": {"count": 24, "period": "hour"}},
        },
    ]
}


def test_run_results_become_one_row_per_node() -> None:
    frame = run_results_frame(RUN_RESULTS)
    rows = frame.to_dict("records")
    assert [(r["resource_type"], r["name"], r["status"]) for r in rows] == [
        ("test", "not_null_fct_survey_responses_survey_id", "pass"),
        ("unit_test", "test_delay_bands", "fail"),
        ("model", "fct_survey_responses", "success"),
    ]
    assert rows[0]["built_at"] == datetime(2026, 3, 1, 20, 0, 0, 123000)
    assert rows[1]["failures"] == 2 and rows[1]["message"] == "2 rows differ"


def test_source_freshness_rows_in_utc_and_no_age_for_an_empty_source() -> None:
    rows = source_freshness_frame(SOURCES).to_dict("records")
    assert [r["source"] for r in rows] == ["raw.survey_events", "raw.survey_responses"]
    empty, loaded = rows
    assert pd.isna(empty["max_loaded_at"]) and pd.isna(empty["loaded_age_s"])
    assert (empty["warn_after"], empty["error_after"]) == ("24 hour", None)
    assert loaded["max_loaded_at"] == datetime(2026, 3, 1, 18, 58, 30)
    assert loaded["loaded_age_s"] == 3690.0


def test_missing_artifacts_give_empty_relations_with_their_columns() -> None:
    assert run_results_frame(None).empty
    assert "status" in run_results_frame(None).columns
    assert source_freshness_frame(None).empty
    assert "max_loaded_at" in source_freshness_frame(None).columns
