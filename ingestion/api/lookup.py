"""Look surveys up in the published snapshot (``settings.serving_path``), read-only.

Each lookup opens its own short-lived read-only connection, so a newly published snapshot
(swapped in with ``os.replace``) is seen by the next request. Rows come from
``marts.fct_survey_responses``, which holds no passenger names or customer ids.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ingestion.errors import ContrailError
from ingestion.warehouse import connect_duckdb

TABLE = "marts.fct_survey_responses"
MAX_FLIGHT_SURVEYS = 10_000
# Never returned, even if a future version of the fact table carried them.
PII_COLUMNS = frozenset({"passenger_name", "customer_id"})


class SnapshotUnavailable(ContrailError):
    """There is no published snapshot to read yet (503)."""


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _query(snapshot: Path, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    if not snapshot.exists():
        raise SnapshotUnavailable(
            f"{snapshot}: no published snapshot yet; lookups work once `contrail run` or "
            "`contrail stream run` has published one"
        )
    conn = connect_duckdb(snapshot, read_only=True)
    try:
        cursor = conn.execute(sql, params)
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
        keep = [i for i, name in enumerate(names) if name not in PII_COLUMNS]
    except duckdb.CatalogException as exc:
        raise SnapshotUnavailable(
            f"{snapshot}: the published snapshot has no {TABLE} ({exc}); publish a full build"
        ) from exc
    finally:
        conn.close()
    return [{names[i]: _json_value(row[i]) for i in keep} for row in rows]


def survey_by_id(snapshot: Path, survey_id: str) -> dict[str, Any] | None:
    """The survey's row in the fact table, or None when the snapshot does not have it."""
    rows = _query(snapshot, f"select * from {TABLE} where survey_id = ?", [survey_id])
    return rows[0] if rows else None


def surveys_by_flight(snapshot: Path, flight_id: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` surveys of the flight, in submission order (then by survey_id)."""
    return _query(
        snapshot,
        f"select * from {TABLE} where flight_id = ? "
        "order by survey_submitted_at nulls last, survey_id limit ?",
        [flight_id, limit],
    )
