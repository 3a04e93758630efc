"""How a number looks, decided by the name of its column.

Pages never say how to format a value: the column name does, so the same measure reads the same
on every page, in KPI tiles, chart axes, tooltips and tables. The rules, first match wins:

| Column name | Kind | Example |
|---|---|---|
| ends ``_pp`` | change in percentage points (of a 0-1 rate) | ``+1.2 pp`` |
| ends ``_rate`` or ``_share`` | percentage of a 0-1 value | ``81.4%`` |
| ends ``_s`` or ``_seconds`` | seconds | ``12.3 s``, ``4.5 min``, ``2.1 h`` |
| ends ``_minutes`` | minutes | ``14.0 min`` |
| starts ``mean_``, ends ``_rating`` or contains ``importance`` | score, 2 decimals | ``3.47`` |
| ends ``_at`` | timestamp, UTC | ``2026-03-01 20:00:00`` |
| ends ``_date``, or is ``date_day`` | date | ``2026-03-01`` |
| anything else numeric | whole: thousands separators; other: 2 decimals | ``12,345`` |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

import pandas as pd

MISSING = "–"  # shown for null / NaN


class Kind(Enum):
    POINTS = "points"
    PERCENT = "percent"
    SECONDS = "seconds"
    MINUTES = "minutes"
    SCORE = "score"
    TIMESTAMP = "timestamp"
    DATE = "date"
    NUMBER = "number"  # counts and other plain numbers


def kind_of(column: str) -> Kind:
    """The format a column gets from its name (see the module docstring)."""
    name = column.lower()
    if name.endswith("_pp"):
        return Kind.POINTS
    if name.endswith(("_rate", "_share")):
        return Kind.PERCENT
    if name.endswith(("_s", "_seconds")):
        return Kind.SECONDS
    if name.endswith("_minutes"):
        return Kind.MINUTES
    if name.startswith("mean_") or name.endswith("_rating") or "importance" in name:
        return Kind.SCORE
    if name.endswith("_at"):
        return Kind.TIMESTAMP
    if name.endswith("_date") or name in ("date_day", "day"):
        return Kind.DATE
    return Kind.NUMBER


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def _seconds(value: float) -> str:
    if abs(value) < 120:
        return f"{value:,.1f} s"
    if abs(value) < 7_200:
        return f"{value / 60:,.1f} min"
    return f"{value / 3_600:,.1f} h"


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def format_value(column: str, value: Any) -> str:
    """``value`` as text, formatted by the rules for ``column``."""
    if is_missing(value):
        return MISSING
    if hasattr(value, "item") and not isinstance(value, (datetime, date)):
        value = value.item()  # numpy scalar -> Python
    kind = kind_of(column)
    if isinstance(value, str) and kind not in (Kind.TIMESTAMP, Kind.DATE):
        return value
    if kind is Kind.POINTS:
        return f"{value * 100:+.1f} pp"
    if kind is Kind.PERCENT:
        return f"{value:.1%}"
    if kind is Kind.SECONDS:
        return _seconds(float(value))
    if kind is Kind.MINUTES:
        return f"{float(value):,.1f} min"
    if kind is Kind.SCORE:
        return f"{float(value):.2f}"
    if kind is Kind.TIMESTAMP:
        stamp = pd.Timestamp(value)
        return stamp.strftime("%Y-%m-%d %H:%M:%S")
    if kind is Kind.DATE:
        return pd.Timestamp(value).strftime("%Y-%m-%d")
    return _number(value)


@dataclass(frozen=True)
class AxisFormat:
    """A d3 format for Vega-Lite axes and tooltips, and the unit to add to the axis title."""

    d3: str | None
    unit: str = ""


def axis_format(column: str, integer: bool = False) -> AxisFormat:
    """How Altair should format ``column`` on an axis (``integer``: the values are whole)."""
    kind = kind_of(column)
    if kind is Kind.PERCENT:
        return AxisFormat(".0%")
    if kind is Kind.POINTS:
        return AxisFormat("+.1%", "pp")
    if kind is Kind.SECONDS:
        return AxisFormat(",.1f", "s")
    if kind is Kind.MINUTES:
        return AxisFormat(",.0f", "min")
    if kind is Kind.SCORE:
        return AxisFormat(".2f")
    if kind in (Kind.TIMESTAMP, Kind.DATE):
        return AxisFormat(None)
    return AxisFormat(",d" if integer else ",.2f")


def tooltip_format(column: str, integer: bool = False) -> str | None:
    """A d3 format for tooltips: like the axis, but a percentage keeps one decimal."""
    kind = kind_of(column)
    if kind is Kind.PERCENT:
        return ".1%"
    return axis_format(column, integer).d3


def humanize(column: str) -> str:
    """A column name as a title: ``satisfaction_rate`` -> ``Satisfaction rate``."""
    if column == "date_day":  # the calendar's day column
        return "Day"
    words = column.replace("__", " ").replace("_", " ").strip()
    for suffix, unit in (
        (" pp", " (pp)"),
        (" s", " (s)"),
        (" seconds", " (s)"),
        (" minutes", " (min)"),
    ):
        if words.endswith(suffix):
            words = words[: -len(suffix)] + unit
            break
    return words[:1].upper() + words[1:]
