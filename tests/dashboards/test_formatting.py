"""Number formats follow column-name suffixes."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from dashboards.formatting import axis_format, format_value, humanize


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("satisfaction_rate", 0.81437, "81.4%"),
        ("not_applicable_share", 0.05, "5.0%"),
        ("satisfaction_change_pp", -0.0191, "-1.9 pp"),
        ("satisfaction_change_pp", 0.004, "+0.4 pp"),
        ("freshness_p50_s", 2.345, "2.3 s"),
        ("freshness_seconds", 600, "10.0 min"),
        ("cycle_s", 10_800, "3.0 h"),
        ("median_departure_delay_minutes", 14, "14.0 min"),
        ("mean_rating", 3.14159, "3.14"),
        ("seat_comfort_rating", 4, "4.00"),
        ("importance", 0.29166, "0.29"),
        ("responses", 1234567, "1,234,567"),
        ("responses", np.int64(6000), "6,000"),
        ("responses", 1234.0, "1,234"),  # a whole float (e.g. a sum) is still a count
        ("flights", 12.5, "12.50"),
        ("published_at", datetime(2026, 3, 1, 20, 0, 5), "2026-03-01 20:00:05"),
        ("published_at", pd.Timestamp("2026-03-01 20:00:05"), "2026-03-01 20:00:05"),
        ("survey_date", date(2026, 3, 1), "2026-03-01"),
        ("date_day", pd.Timestamp("2026-03-01"), "2026-03-01"),
        ("route", "JFK-LAX", "JFK-LAX"),
        ("satisfaction_rate", None, "–"),
        ("satisfaction_rate", float("nan"), "–"),
        ("published_at", pd.NaT, "–"),
        ("responses", pd.NA, "–"),
    ],
)
def test_format_value_by_suffix(column: str, value: object, expected: str) -> None:
    assert format_value(column, value) == expected


@pytest.mark.parametrize(
    ("column", "integer", "d3", "unit"),
    [
        ("satisfaction_rate", False, ".0%", ""),
        ("freshness_p95_s", False, ",.1f", "s"),
        ("mean_departure_delay_minutes", False, ",.0f", "min"),
        ("mean_rating", False, ".2f", ""),
        ("responses", True, ",d", ""),
        ("flights_per_day", False, ",.2f", ""),
    ],
)
def test_axis_formats(column: str, integer: bool, d3: str, unit: str) -> None:
    fmt = axis_format(column, integer)
    assert (fmt.d3, fmt.unit) == (d3, unit)


def test_humanize_titles() -> None:
    assert humanize("satisfaction_rate") == "Satisfaction rate"
    assert humanize("freshness_p50_s") == "Freshness p50 (s)"
    assert humanize("median_departure_delay_minutes") == "Median departure delay (min)"
    assert humanize("satisfaction_change_pp") == "Satisfaction change (pp)"
    assert humanize("freshness_seconds") == "Freshness (s)"
