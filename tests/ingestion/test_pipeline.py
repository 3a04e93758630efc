"""The batch pipeline as a library: generate, load, build, publish, summarise."""

from __future__ import annotations

import csv
import hashlib

import pytest

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.pipeline import build, run_pipeline
from ingestion.summary import read_headline
from ingestion.warehouse import connect_duckdb

pytestmark = pytest.mark.slow


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_then_a_failing_build_keeps_the_last_good_snapshot(settings: Settings) -> None:
    result = run_pipeline(settings, rows=4_000, seed=11)

    with result.csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    satisfied = sum(row["satisfaction"] == "satisfied" for row in rows)
    headline = read_headline(settings)
    assert (headline.responses, headline.satisfied) == (4_000, satisfied)
    assert headline.satisfaction_rate == pytest.approx(satisfied / 4_000)
    assert len(headline.strongest) == 3 and len(headline.weakest) == 3
    assert headline.strongest[0].mean_rating >= headline.weakest[0].mean_rating
    assert result.build.snapshot == settings.serving_path
    published = _sha256(settings.serving_path)

    # An audit row that does not reconcile with the raw rows must fail a dbt test.
    conn = connect_duckdb(settings.warehouse_path)
    conn.execute(
        "insert into raw.load_audit (batch_id, source_kind, source_file, file_sha256, "
        "file_bytes, layout, status, rows_in_file, rows_loaded, rows_quarantined, message, "
        "started_at, finished_at) values ('csv-broken', 'csv', 'broken.csv', 'feed', 10, "
        "'invistico', 'loaded', 10, 7, 0, 'hand-made', now()::timestamp, now()::timestamp)"
    )
    conn.close()

    with pytest.raises(ContrailError, match=r"dbt build failed on duckdb.*Nothing was published"):
        build(settings)
    assert _sha256(settings.serving_path) == published
