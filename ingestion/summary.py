"""The headline numbers `contrail run` prints, read back from the marts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.warehouse import connect_duckdb, connect_postgres


@dataclass(frozen=True)
class ServiceScore:
    service: str
    mean_rating: float
    importance: float
    quadrant: str


@dataclass(frozen=True)
class Headline:
    responses: int
    satisfied: int
    satisfaction_rate: float
    strongest: tuple[ServiceScore, ...]
    weakest: tuple[ServiceScore, ...]
    snapshot: Path | None


OVERALL_SQL = """
select responses, satisfied, satisfaction_rate
from marts.mart_satisfaction_by_segment
where segment_type = 'overall'
"""

SERVICES_SQL = """
select service_label, mean_rating, importance, quadrant
from marts.mart_service_drivers
where mean_rating is not null
order by mean_rating desc, service
"""


def _fetch(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def read_headline(settings: Settings, *, target: str = "duckdb", count: int = 3) -> Headline:
    """Overall satisfaction and the strongest and weakest services by mean rating."""
    snapshot: Path | None = None
    if target == "duckdb":
        snapshot = settings.serving_path
        if not snapshot.exists():
            raise ContrailError(f"{snapshot}: no published snapshot yet; run `contrail build`")
        conn: Any = connect_duckdb(snapshot, read_only=True)
    else:
        conn = connect_postgres(settings.postgres)
    try:
        overall = _fetch(conn, OVERALL_SQL)
        services = _fetch(conn, SERVICES_SQL)
    finally:
        conn.close()
    if not overall:
        raise ContrailError(
            "marts.mart_satisfaction_by_segment has no overall row: nothing loaded?"
        )
    responses, satisfied, rate = overall[0]
    scores = [ServiceScore(str(s), float(m), float(i or 0), str(q)) for s, m, i, q in services]
    return Headline(
        responses=int(responses),
        satisfied=int(satisfied),
        satisfaction_rate=float(rate),
        strongest=tuple(scores[:count]),
        weakest=tuple(reversed(scores[-count:])) if scores else (),
        snapshot=snapshot,
    )
