"""Turn a page's named query into the SQL that runs, run it on the snapshot, cache the result.

Compiling resolves ``${other}`` references (inlined as parenthesised subqueries, so the text
that runs is one self-contained statement the trail can show), replaces ``{{ filters }}`` with
the predicate of ``Filters.where`` and binds every value as a named parameter: ``$filter_*``
for the global filters, ``$input_*`` for the page's inputs. No value is ever formatted into
the SQL text.

Results are cached with ``st.cache_data`` on the snapshot (path and ``publish_id``), the SQL and
its parameters: a newly published snapshot has a new ``publish_id``, so the next interaction
reads it, while reruns on the same snapshot cost nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from textwrap import indent
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.artifacts import RELATIONS
from dashboards.filters import Filters
from dashboards.pages_spec import FILTERS, INPUT_PARAM, REFERENCE, Page
from dashboards.snapshot import SnapshotInfo, connect
from ingestion.config import Settings

_RELATION_NAMES = re.compile(r"\b(" + "|".join(RELATIONS) + r")\b")


@dataclass(frozen=True)
class CompiledQuery:
    """The SQL text executed and the values bound to its ``$name`` parameters."""

    name: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)

    def relations(self) -> tuple[str, ...]:
        """The artifact relations (``dbt_run_results``, …) this SQL reads."""
        return tuple(sorted(set(_RELATION_NAMES.findall(self.sql))))


def compile_query(
    page: Page, name: str, filters: Filters, inputs: Mapping[str, Any] | None = None
) -> CompiledQuery:
    """The final SQL of ``page``'s query ``name`` and its parameters.

    ``inputs`` maps an input's name (``flight``) to its value, bound as ``$input_flight``.
    """
    inputs = inputs or {}
    params: dict[str, Any] = {}

    def predicate(match: re.Match[str]) -> str:
        text, values = filters.where(match.group(1) or match.group(2))
        params.update(values)
        return f"({text})" if " and " in text else text

    def expand(query_name: str) -> str:
        sql = page.queries[query_name].sql
        sql = REFERENCE.sub(lambda m: "(\n" + indent(expand(m.group(1)), "    ") + "\n)", sql)
        return FILTERS.sub(predicate, sql)

    sql = expand(name)
    for match in INPUT_PARAM.finditer(sql):
        key = match.group(1).removeprefix("input_")
        params[match.group(1)] = inputs.get(key)
    return CompiledQuery(name, sql, params)


def execute(settings: Settings, info: SnapshotInfo, query: CompiledQuery) -> pd.DataFrame:
    """Run ``query`` on a fresh read-only connection to the snapshot (no cache)."""
    with connect(info.path) as conn:
        for relation in query.relations():
            conn.register(relation, RELATIONS[relation](settings, info))
        return conn.execute(query.sql, query.params).df()


@st.cache_data(max_entries=512, show_spinner=False)
def _cached(
    path: str,
    publish_id: str,
    sql: str,
    params: dict[str, Any],
    _settings: Settings,
    _info: SnapshotInfo,
    _query: CompiledQuery,
) -> pd.DataFrame:
    # path, publish_id, sql and params are the key; the underscored arguments are not hashed.
    return execute(_settings, _info, _query)


def run_query(settings: Settings, info: SnapshotInfo, query: CompiledQuery) -> pd.DataFrame:
    """``query``'s rows from the snapshot ``info``, cached per snapshot, SQL and parameters."""
    return _cached(str(info.path), info.publish_id, query.sql, query.params, settings, info, query)
