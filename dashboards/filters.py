"""The dashboards' global filters, and the SQL predicate they bind.

Every filter is passed to DuckDB as a named parameter (``$name``), never formatted into the
SQL text. An empty selection means "everything", so the default filters select every survey.
The predicate reads the canonical survey columns that staging, the deduplicated surveys and
``fct_survey_responses`` share, so the same filters apply at each stage of the trail.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from typing import Any

# Filter field -> the survey column it constrains (lists match any of the chosen values).
_LIST_COLUMNS: dict[str, str] = {
    "travel_classes": "travel_class",
    "customer_types": "customer_type",
    "travel_types": "type_of_travel",
    "channels": "channel",
}


@dataclass(frozen=True)
class Filters:
    """What the sidebar selects. Empty tuples and ``None`` dates select everything."""

    date_from: date | None = None  # first survey_date included
    date_to: date | None = None  # last survey_date included
    travel_classes: tuple[str, ...] = ()
    customer_types: tuple[str, ...] = ()
    travel_types: tuple[str, ...] = ()
    airports: tuple[str, ...] = ()  # IATA codes matching the origin or the destination
    routes: tuple[str, ...] = ()  # "ORIGIN-DESTINATION", e.g. "JFK-LAX"
    channels: tuple[str, ...] = ()  # "batch", "stream"

    @property
    def is_default(self) -> bool:
        return self == Filters()

    def params(self) -> dict[str, Any]:
        """Every filter as a named parameter (``filter_<field>``), lists as lists."""
        values: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            values[f"filter_{item.name}"] = list(value) if isinstance(value, tuple) else value
        return values

    def where(self, alias: str | None = None) -> tuple[str, dict[str, Any]]:
        """A SQL predicate (``true`` when nothing is chosen) and the parameters it binds.

        ``alias`` qualifies the columns (``alias.travel_class``) for queries that join.
        """
        prefix = f"{alias}." if alias else ""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.date_from is not None:
            clauses.append(f"{prefix}survey_date >= $filter_date_from")
            params["filter_date_from"] = self.date_from
        if self.date_to is not None:
            clauses.append(f"{prefix}survey_date <= $filter_date_to")
            params["filter_date_to"] = self.date_to
        for name, column in _LIST_COLUMNS.items():
            chosen = getattr(self, name)
            if chosen:
                clauses.append(f"list_contains($filter_{name}, {prefix}{column})")
                params[f"filter_{name}"] = list(chosen)
        if self.airports:
            clauses.append(
                f"(list_contains($filter_airports, {prefix}origin_airport)"
                f" or list_contains($filter_airports, {prefix}destination_airport))"
            )
            params["filter_airports"] = list(self.airports)
        if self.routes:
            clauses.append(
                f"list_contains($filter_routes, {prefix}origin_airport || '-' || "
                f"{prefix}destination_airport)"
            )
            params["filter_routes"] = list(self.routes)
        return (" and ".join(clauses) if clauses else "true"), params

    def describe(self) -> str:
        """A short human summary, e.g. "Business, Eco · 2026-01-01 to 2026-03-31"."""
        parts: list[str] = []
        if self.date_from or self.date_to:
            parts.append(f"{self.date_from or 'start'} to {self.date_to or 'end'}")
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, tuple) and value:
                parts.append(", ".join(value))
        return " · ".join(parts) if parts else "all surveys"
