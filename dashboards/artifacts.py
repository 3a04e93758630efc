"""The dbt artifacts and snapshot facts pages can query as if they were tables.

Pipeline health reports dbt test results (``run_results.json``), source freshness
(``sources.json``) and when the snapshot was built. Pages stay SQL: these relations are
registered on the query's connection under fixed names, built from the artifacts published
with the snapshot being read:

- ``dbt_run_results``: one row per node dbt ran (models, tests, unit tests, seeds);
- ``dbt_source_freshness``: one row per source freshness check;
- ``contrail_snapshot``: one row, the snapshot's ``publish_id`` and ``published_at``.

A snapshot published without artifacts gives empty relations with the same columns, so a page
shows its "nothing here" message rather than an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from dashboards.snapshot import SnapshotInfo, load_artifact
from ingestion.config import Settings

RUN_RESULT_COLUMNS = [
    "unique_id",
    "resource_type",
    "name",
    "status",
    "failures",
    "message",
    "execution_s",
    "built_at",
]
SOURCE_COLUMNS = [
    "unique_id",
    "source",
    "status",
    "max_loaded_at",
    "snapshotted_at",
    "loaded_age_s",
    "warn_after",
    "error_after",
]


def artifact_time(text: Any) -> datetime | None:
    """An artifact time as naive UTC; dbt writes year 1 for a source with no rows."""
    if not text:
        return None
    try:
        stamp = pd.Timestamp(text)
    except (TypeError, ValueError):
        return None
    if stamp.year < 1900:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def _node_name(unique_id: str) -> str:
    """``test.contrail.not_null_x.abc123`` -> ``not_null_x``; ``model.contrail.x`` -> ``x``."""
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) >= 4:
        return parts[2]
    return parts[-1]


def run_results_frame(run_results: dict[str, Any] | None) -> pd.DataFrame:
    """``run_results.json`` as rows; ``built_at`` is the build that produced each result."""
    rows = []
    for result in (run_results or {}).get("results", []):
        unique_id = str(result.get("unique_id", ""))
        rows.append(
            {
                "unique_id": unique_id,
                "resource_type": unique_id.split(".")[0],
                "name": _node_name(unique_id),
                "status": result.get("status"),
                "failures": result.get("failures"),
                "message": result.get("message"),
                "execution_s": result.get("execution_time"),
                "built_at": artifact_time(result.get("built_at")),
            }
        )
    frame = pd.DataFrame(rows, columns=RUN_RESULT_COLUMNS)
    return frame.astype({"failures": "Int64", "execution_s": "float64"})


def freshness_rule(criteria: Mapping[str, Any], key: str) -> str | None:
    """A freshness criterion (``warn_after``, ``error_after``) as ``24 hour``, or None."""
    rule = criteria.get(key) or {}
    if rule.get("count") is None or rule.get("period") is None:
        return None
    return f"{rule['count']} {rule['period']}"


def source_freshness_frame(sources: dict[str, Any] | None) -> pd.DataFrame:
    """``sources.json`` as rows; a source with no rows has no ``max_loaded_at``."""
    rows = []
    for result in (sources or {}).get("results", []):
        unique_id = str(result.get("unique_id", ""))
        max_loaded_at = artifact_time(result.get("max_loaded_at"))
        criteria = result.get("criteria") or {}
        rows.append(
            {
                "unique_id": unique_id,
                "source": ".".join(unique_id.split(".")[2:]) or unique_id,
                "status": result.get("status"),
                "max_loaded_at": max_loaded_at,
                "snapshotted_at": artifact_time(result.get("snapshotted_at")),
                "loaded_age_s": result.get("max_loaded_at_time_ago_in_s")
                if max_loaded_at is not None
                else None,
                "warn_after": freshness_rule(criteria, "warn_after"),
                "error_after": freshness_rule(criteria, "error_after"),
            }
        )
    frame = pd.DataFrame(rows, columns=SOURCE_COLUMNS)
    return frame.astype({"loaded_age_s": "float64"})


def snapshot_frame(info: SnapshotInfo) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "publish_id": info.publish_id,
                "published_at": info.published_at,
                "has_artifacts": info.has_artifacts,
            }
        ]
    )


RELATIONS: dict[str, Callable[[Settings, SnapshotInfo], pd.DataFrame]] = {
    "dbt_run_results": lambda settings, info: run_results_frame(
        load_artifact(settings, info, "run_results.json")
    ),
    "dbt_source_freshness": lambda settings, info: source_freshness_frame(
        load_artifact(settings, info, "sources.json")
    ),
    "contrail_snapshot": lambda settings, info: snapshot_frame(info),
}
