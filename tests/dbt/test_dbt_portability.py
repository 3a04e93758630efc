"""The project stays portable: Redshift parses and compiles offline, and the SQL avoids
constructs that only some engines accept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot

from ingestion.config import REPO_ROOT

from .conftest import Warehouse

PROJECT_SQL = sorted((REPO_ROOT / "dbt_project").rglob("*.sql"))

# Constructs that fail on PostgreSQL or Redshift, or mean something else there.
NOT_PORTABLE = {
    "group by all": re.compile(r"\bgroup\s+by\s+all\b", re.I),
    "qualify": re.compile(r"\bqualify\b", re.I),
    "exclude": re.compile(r"\*\s*exclude\b", re.I),
    "count_if": re.compile(r"\bcount_if\s*\(", re.I),
    "filter (where": re.compile(r"\bfilter\s*\(\s*where\b", re.I),
    "median": re.compile(r"\bmedian\s*\(", re.I),
    "double without precision": re.compile(r"\bdouble\b(?!\s+precision)", re.I),
    ":: cast": re.compile(r"::"),
    "generate_series": re.compile(r"\bgenerate_series\b", re.I),
    "distinct on": re.compile(r"\bdistinct\s+on\b", re.I),
    "round": re.compile(r"\bround\s*\(", re.I),
    "trailing comma before from": re.compile(r",\s*\n\s*from\b", re.I),
}


def strip_comments(sql: str) -> str:
    sql = re.sub(r"\{#.*?#\}", "", sql, flags=re.S)
    return re.sub(r"--[^\n]*", "", sql)


def strip_duckdb_implementations(sql: str) -> str:
    """Drop ``duckdb__`` macros: adapter.dispatch picks them on DuckDB only (the compiled
    Redshift SQL is checked below)."""
    return re.sub(r"\{%-?\s*macro\s+duckdb__.*?\{%-?\s*endmacro\s*-?%\}", "", sql, flags=re.S)


@pytest.mark.parametrize("path", PROJECT_SQL, ids=lambda p: p.name)
def test_sql_uses_only_portable_constructs(path: Path) -> None:
    sql = strip_duckdb_implementations(strip_comments(path.read_text()))
    found = [name for name, pattern in NOT_PORTABLE.items() if pattern.search(sql)]
    assert found == [], f"{path.relative_to(REPO_ROOT)}: not portable: {found}"


def test_portability_check_catches_what_it_looks_for() -> None:
    sample = "select a, count_if(b) from t group by all qualify x::int > 1"
    found = {name for name, pattern in NOT_PORTABLE.items() if pattern.search(sample)}
    assert found == {"count_if", "group by all", "qualify", ":: cast"}


@pytest.mark.slow
def test_redshift_parses_and_compiles_offline(tmp_path: Path) -> None:
    warehouse = Warehouse("redshift", tmp_path)
    parsed = warehouse.dbt("parse")
    assert parsed.returncode == 0, parsed.stdout[-4000:]
    # Unit tests need a live warehouse; everything else compiles without one.
    compiled = warehouse.dbt(
        "compile", "--no-introspect", "--no-populate-cache", "--exclude", "resource_type:unit_test"
    )
    assert compiled.returncode == 0, compiled.stdout[-4000:]
    models = tmp_path / "target" / "compiled" / "contrail" / "dbt_project" / "models"
    marts = sorted((models / "marts").glob("*.sql"))
    assert {p.stem for p in marts} >= {
        "fct_survey_responses",
        "mart_service_drivers",
        "mart_daily_satisfaction",
        "dim_date",
    }
    for path in models.rglob("*.sql"):
        sql = path.read_text()
        assert "::" not in sql, path.name
        assert not NOT_PORTABLE["count_if"].search(sql), path.name
        sqlglot.parse(sql, read="redshift")  # raises on SQL it cannot read
