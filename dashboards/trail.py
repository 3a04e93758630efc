"""The trail behind every dashboard number: "How was this computed?".

Each KPI and chart opens an expander and calls ``render_trail``. The trail shows

- the SQL as executed (parameterised) and, for reading only, the same text with every ``$name``
  replaced by its value as a SQL literal, plus the parameter table;
- the dbt models the SQL reads and their lineage back to the raw sources and seeds, and the dbt
  tests on them with the status of their last run, all from the artifacts published with the
  snapshot (``dashboards.lineage``);
- how many survey rows each stage holds for the current filters: landed, quarantined, staged,
  deduplicated and in the mart, and the source files the matching surveys came from;
- when the snapshot was built and how fresh its data is.

Building it is plain data (``build_trail`` → ``Trail``), so tests need no Streamlit. Every part
that reads the snapshot or the artifacts is cached on the snapshot's ``publish_id`` (a new
snapshot misses the cache) and on the filters, so the many trails of one page cost one pass.
Counting the staged rows ranks every landed stream record (the staging view drops redelivered
copies), which takes about a second per million records, so past ``STAGED_EAGER_MAX_RECORDS``
it runs only on demand.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import streamlit as st

from dashboards.artifacts import artifact_time, freshness_rule
from dashboards.filters import Filters
from dashboards.lineage import Lineage, build_lineage, sql_tokens, table_references
from dashboards.snapshot import SnapshotInfo, SnapshotMissing, connect, load_artifact
from ingestion.config import Settings

T = TypeVar("T")

# Above this many landed stream records, staged rows are counted only when asked for.
STAGED_EAGER_MAX_RECORDS = 250_000
TOP_SOURCE_FILES = 10

# The survey rows' path through the warehouse; a query whose lineage reaches one of these
# sources gets the stage counts.
SURVEY_SOURCES = ("source.contrail.raw.survey_responses", "source.contrail.raw.survey_events")
# Why the filters cannot apply before staging (the totals are shown there instead).
_RAW_NOTE = "filters cannot apply: raw labels, no survey_date yet (staging derives them)"
_QUARANTINE_NOTE = "refused lines and records; filters cannot apply: nothing in them is parsed"


@dataclass(frozen=True)
class TrailRequest:
    """What a KPI or chart computed: the title, the SQL as executed and its bound values."""

    title: str  # the KPI/chart title
    sql: str  # the final SQL text executed, with $name parameters
    params: dict[str, Any]  # the bound values (filters and page inputs)
    filters: Filters  # the filters in effect


@dataclass(frozen=True)
class Parameter:
    """One bound value, as the reader sees it in the substituted SQL."""

    name: str
    literal: str  # the value as a SQL literal
    type_name: str
    used: bool  # whether the SQL refers to it


@dataclass(frozen=True)
class StageCount:
    """Rows of one relation at one stage of the survey path."""

    stage: str  # landed, quarantined, staged, deduplicated, mart
    relation: str
    rows: int | None  # None: not counted (see note)
    filtered: bool  # whether the current filters were applied
    note: str


@dataclass(frozen=True)
class SourceFile:
    """A file or delivery object that the matching surveys' latest copies came from."""

    source_file: str
    channel: str
    batch_id: str
    source_kind: str | None  # csv or firehose, from raw.load_audit
    load_status: str | None
    loaded_at: datetime | None  # when its load finished
    surveys: int


@dataclass(frozen=True)
class SourceFreshness:
    """One source's row of the build's ``dbt source freshness`` (sources.json)."""

    source: str  # unique id
    status: str  # pass, warn, error, runtime error
    max_loaded_at: datetime | None  # None: the table had no rows
    checked_at: datetime | None
    warn_after: str | None


@dataclass(frozen=True)
class Freshness:
    """When the snapshot was built and how recent its newest surveys are (naive UTC)."""

    published_at: datetime | None
    newest_submitted_at: datetime | None
    newest_loaded_at: datetime | None
    as_of: datetime  # the time the ages are measured from
    sources: tuple[SourceFreshness, ...]
    note: str | None

    def age(self, moment: datetime | None) -> timedelta | None:
        return None if moment is None else self.as_of - moment


@dataclass(frozen=True)
class Trail:
    """Everything one "How was this computed?" expander shows, as plain data."""

    title: str
    sql: str
    bound_sql: str
    parameters: tuple[Parameter, ...]
    filters: Filters
    publish_id: str
    relations: tuple[str, ...]  # schema.table names the SQL reads
    lineage: Lineage | None  # None when the artifacts or the SQL could not be read
    stages: tuple[StageCount, ...]  # empty when the query reads no survey rows
    staged_counted: bool
    source_files: tuple[SourceFile, ...]
    source_files_total: int | None  # (file, load batch) pairs behind the matching surveys
    freshness: Freshness
    notes: tuple[str, ...]  # what could not be shown, and why


# --- SQL text: literals and the substituted rendering -------------------------------------


def sql_literal(value: Any) -> str:
    """``value`` as a DuckDB SQL literal, for display: strings quoted with ``'`` doubled."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):  # scalars and arrays
        value = value.tolist()
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if isinstance(value, float) and not math.isfinite(value):
            return f"'{value}'::DOUBLE"
        if isinstance(value, Decimal) and not value.is_finite():
            return f"'{value}'::DECIMAL"
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return f"{kind} '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, time):
        return f"TIME '{value.isoformat()}'"
    if isinstance(value, timedelta):
        return f"INTERVAL '{value // timedelta(microseconds=1)} microseconds'"
    if isinstance(value, bytes | bytearray):
        return "'" + "".join(f"\\x{b:02X}" for b in value) + "'::BLOB"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(sql_literal(item) for item in value) + "]"
    if isinstance(value, set | frozenset):
        return "[" + ", ".join(sorted(sql_literal(item) for item in value)) + "]"
    if isinstance(value, Mapping):
        items = (f"{sql_literal(str(k))}: {sql_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return "'" + str(value).replace("'", "''") + "'"


def parameter_spans(sql: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, name)`` of every ``$name`` outside strings, quoted names and comments."""
    for token in sql_tokens(sql):
        if token.kind == "param":
            yield token.start, token.end, token.text[1:]


def bind_for_display(sql: str, params: Mapping[str, Any]) -> str:
    """The SQL with each bound ``$name`` replaced by its literal. For reading, never for running."""
    parts: list[str] = []
    last = 0
    for start, end, name in parameter_spans(sql):
        if name in params:
            parts.append(sql[last:start])
            parts.append(sql_literal(params[name]))
            last = end
    parts.append(sql[last:])
    return "".join(parts)


def _type_name(value: Any) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        inner = sorted({type(item).__name__ for item in value})
        return f"list[{' | '.join(inner)}]" if inner else "list"
    return type(value).__name__


def describe_parameters(sql: str, params: Mapping[str, Any]) -> tuple[Parameter, ...]:
    """The parameter table: every bound value, and whether the SQL uses it."""
    used = {name for _, _, name in parameter_spans(sql)}
    return tuple(
        Parameter(name, sql_literal(value), _type_name(value), name in used)
        for name, value in params.items()
    )


# --- Artifacts and lineage (cached per snapshot) -----------------------------------------


class _Lru:
    """A small thread-safe LRU cache of plain values, keyed on hashable tuples.

    Used instead of ``functools.lru_cache`` so that the values read from the snapshot can share
    one connection per trail (opening a DuckDB connection costs about 30 ms, more than the
    counts themselves), and instead of ``st.cache_data``, which copies every value on each hit.
    """

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


_ARTIFACTS = _Lru(2)  # a manifest is a few MB in memory; only the current snapshot matters
_LINEAGE = _Lru(512)
_COUNTS = _Lru(256)
_STAGED = _Lru(256)
_FILES = _Lru(256)
_NEWEST = _Lru(16)


def clear_caches() -> None:
    """Forget every cached artifact, lineage and count (a new publish_id misses them anyway)."""
    for cache in (_ARTIFACTS, _LINEAGE, _COUNTS, _STAGED, _FILES, _NEWEST):
        cache.clear()


class _Reader:
    """One read-only connection to the snapshot for the uncached parts of a trail, opened lazily."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stack = ExitStack()
        self._conn: duckdb.DuckDBPyConnection | None = None

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            self._conn = self._stack.enter_context(connect(self._path))
        return self._conn

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


@dataclass(frozen=True)
class _Artifacts:
    manifest: dict[str, Any] | None
    run_results: dict[str, Any] | None
    sources: dict[str, Any] | None
    notes: tuple[str, ...]


def _load_artifacts(settings: Settings, info: SnapshotInfo) -> _Artifacts:
    if not info.has_artifacts:
        return _Artifacts(
            None,
            None,
            None,
            (
                f"Snapshot {info.publish_id} was published without dbt artifacts (an older "
                "snapshot): lineage, tests and source freshness are not available. "
                "Rebuild with `contrail run` to get them.",
            ),
        )
    manifest = load_artifact(settings, info, "manifest.json")
    run_results = load_artifact(settings, info, "run_results.json")
    sources = load_artifact(settings, info, "sources.json")
    notes: list[str] = []
    if manifest is None:
        notes.append(
            f"manifest.json of snapshot {info.publish_id} is missing (looked in "
            f"{settings.serving_artifacts_dir / info.publish_id} and beside the snapshot): "
            "lineage and tests are not available."
        )
    if run_results is None:
        notes.append("run_results.json is missing: every test shows as not run.")
    else:
        stamped = run_results.get("metadata", {}).get("contrail_publish_id")
        if stamped and stamped != info.publish_id:
            notes.append(
                f"The artifacts of snapshot {info.publish_id} were pruned; the lineage and test "
                f"results shown are those of the newer publish {stamped}."
            )
    return _Artifacts(manifest, run_results, sources, tuple(notes))


# --- Counts in the snapshot ---------------------------------------------------------------


def _count(
    conn: duckdb.DuckDBPyConnection, relation: str, filters: Filters | None
) -> tuple[int | None, str | None]:
    predicate, params = filters.where() if filters is not None else ("true", {})
    try:
        row = conn.execute(f"select count(*) from {relation} where {predicate}", params).fetchone()
    except duckdb.Error as error:
        return None, f"could not count {relation}: {str(error).splitlines()[0]}"
    return (int(row[0]) if row else 0), None


def _stage(
    conn: duckdb.DuckDBPyConnection,
    stage: str,
    relation: str,
    filters: Filters | None,
    note: str,
) -> StageCount:
    rows, error = _count(conn, relation, filters)
    return StageCount(stage, relation, rows, filters is not None, error or note)


def _survey_stages(conn: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[StageCount, ...]:
    """Landed, quarantined, deduplicated and mart rows: plain table scans, milliseconds at 1M."""
    return (
        _stage(conn, "landed", "raw.survey_responses", None, f"batch rows as landed; {_RAW_NOTE}"),
        _stage(
            conn,
            "landed",
            "raw.survey_events",
            None,
            f"stream records as landed, redelivered copies included; {_RAW_NOTE}",
        ),
        _stage(conn, "quarantined", "raw.quarantine", None, _QUARANTINE_NOTE),
        _stage(
            conn,
            "deduplicated",
            "intermediate.int_surveys__deduplicated",
            filters,
            "one row per survey_id across both channels (latest loaded copy)",
        ),
        _stage(
            conn,
            "mart",
            "marts.fct_survey_responses",
            filters,
            "one row per survey: what the dashboards read",
        ),
    )


def _staged_stages(conn: duckdb.DuckDBPyConnection, filters: Filters) -> tuple[StageCount, ...]:
    """Staged rows: views over the raw tables (the stream view ranks every landed record)."""
    return (
        _stage(
            conn,
            "staged",
            "staging.stg_raw__survey_responses",
            filters,
            "batch rows renamed, typed and normalised",
        ),
        _stage(
            conn,
            "staged",
            "staging.stg_raw__survey_events",
            filters,
            "stream surveys, first landed copy of each event",
        ),
    )


def _not_staged(records: int | None) -> tuple[StageCount, ...]:
    note = (
        f"not counted yet: the staging view ranks all {records or 0:,} landed stream records; "
        "switch on 'Count staged rows' to count them"
    )
    return (
        StageCount("staged", "staging.stg_raw__survey_responses", None, True, note),
        StageCount("staged", "staging.stg_raw__survey_events", None, True, note),
    )


def _source_files(
    conn: duckdb.DuckDBPyConnection, filters: Filters
) -> tuple[tuple[SourceFile, ...], int | None, str | None]:
    """The files the matching surveys' latest copies came from, largest first, and how many."""
    predicate, params = filters.where("f")
    sql = f"""
        with matching as (
            select f.batch_id, f.source_file, f.channel, count(*) as surveys
            from marts.fct_survey_responses as f
            where {predicate}
            group by f.batch_id, f.source_file, f.channel
        )
        select
            m.source_file, m.channel, m.batch_id, a.source_kind, a.status, a.finished_at,
            m.surveys, count(*) over () as pairs
        from matching as m
        left join raw.load_audit as a on a.batch_id = m.batch_id
        order by m.surveys desc, m.source_file, m.batch_id
        limit {TOP_SOURCE_FILES}
    """
    try:
        rows = conn.execute(sql, params).fetchall()
    except duckdb.Error as error:
        return (), None, f"source files could not be listed: {str(error).splitlines()[0]}"
    files = tuple(SourceFile(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows)
    return files, (int(rows[0][7]) if rows else 0), None


def _newest(conn: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None, str | None]:
    sql = "select max(survey_submitted_at), max(loaded_at) from marts.fct_survey_responses"
    try:
        row = conn.execute(sql).fetchone()
    except duckdb.Error as error:
        return None, None, f"data freshness unavailable: {str(error).splitlines()[0]}"
    return (row[0], row[1], None) if row else (None, None, None)


def _source_freshness(
    sources: Mapping[str, Any] | None, wanted: set[str] | None
) -> tuple[SourceFreshness, ...]:
    if sources is None:
        return ()
    rows: list[SourceFreshness] = []
    for result in sources.get("results", []):
        unique_id = result.get("unique_id", "")
        if wanted is not None and unique_id not in wanted:
            continue
        rows.append(
            SourceFreshness(
                source=unique_id,
                status=str(result.get("status")),
                max_loaded_at=artifact_time(result.get("max_loaded_at")),
                checked_at=artifact_time(result.get("snapshotted_at")),
                warn_after=freshness_rule(result.get("criteria") or {}, "warn_after"),
            )
        )
    return tuple(sorted(rows, key=lambda r: r.source))


# --- The trail ---------------------------------------------------------------------------


def _hashable(filters: Filters) -> Filters:
    """The filters with every list as a tuple, so they can key the caches."""
    changes = {
        item.name: tuple(getattr(filters, item.name))
        for item in fields(filters)
        if isinstance(getattr(filters, item.name), list | set)
    }
    return replace(filters, **changes) if changes else filters


def build_trail(
    request: TrailRequest,
    settings: Settings,
    info: SnapshotInfo,
    *,
    count_staged: bool | None = None,
) -> Trail:
    """The trail of one KPI or chart.

    ``count_staged``: count the staged rows (True), leave them out (False), or count them only
    when at most ``STAGED_EAGER_MAX_RECORDS`` stream records have landed (None).
    """
    filters = _hashable(request.filters)
    snapshot = (info.path, info.publish_id)
    artifacts = _ARTIFACTS.get((settings, info), lambda: _load_artifacts(settings, info))
    notes = list(artifacts.notes)
    references = table_references(request.sql)
    manifest = artifacts.manifest
    lineage = (
        None
        if manifest is None
        else _LINEAGE.get(
            (settings, info, references),
            lambda: build_lineage(manifest, artifacts.run_results, request.sql),
        )
    )
    if lineage is None:
        relations = tuple(dict.fromkeys(r.candidates[0] for r in references if r.after_from))
    else:
        relations = tuple(n.relation for n in lineage.nodes if n.depth == 0) + lineage.unknown
        if lineage.unknown:
            notes.append(
                "Read but not built by dbt (no lineage): "
                + ", ".join(f"`{name}`" for name in lineage.unknown)
            )

    stages: tuple[StageCount, ...] = ()
    staged_counted = False
    files: tuple[SourceFile, ...] = ()
    files_total: int | None = None
    with _Reader(info.path) as reader:
        if lineage is None or any(lineage.node(s) for s in SURVEY_SOURCES):
            counts = _COUNTS.get((*snapshot, filters), lambda: _survey_stages(reader.conn, filters))
            records = next((s.rows for s in counts if s.relation == "raw.survey_events"), None)
            if count_staged is None:
                count_staged = records is not None and records <= STAGED_EAGER_MAX_RECORDS
            staged = (
                _STAGED.get((*snapshot, filters), lambda: _staged_stages(reader.conn, filters))
                if count_staged
                else _not_staged(records)
            )
            stages = (*counts[:3], *staged, *counts[3:])
            staged_counted = count_staged
            files, files_total, files_error = _FILES.get(
                (*snapshot, filters), lambda: _source_files(reader.conn, filters)
            )
            if files_error:
                notes.append(files_error)
        else:
            notes.append("This query reads no survey rows, so there are no stage counts.")
        submitted, loaded, newest_error = _NEWEST.get(snapshot, lambda: _newest(reader.conn))

    freshness_notes = [newest_error] if newest_error else []
    if manifest is not None and artifacts.sources is None:
        freshness_notes.append("No source freshness was recorded with this snapshot.")
    freshness = Freshness(
        published_at=info.published_at,
        newest_submitted_at=submitted,
        newest_loaded_at=loaded,
        as_of=datetime.now(UTC).replace(tzinfo=None),
        sources=_source_freshness(
            artifacts.sources, None if lineage is None else set(lineage.source_ids)
        ),
        note=" ".join(freshness_notes) or None,
    )
    return Trail(
        title=request.title,
        sql=request.sql,
        bound_sql=bind_for_display(request.sql, request.params),
        parameters=describe_parameters(request.sql, request.params),
        filters=filters,
        publish_id=info.publish_id,
        relations=relations,
        lineage=lineage,
        stages=stages,
        staged_counted=staged_counted,
        source_files=files,
        source_files_total=files_total,
        freshness=freshness,
        notes=tuple(notes),
    )


# --- Rendering ---------------------------------------------------------------------------


def _ago(delta: timedelta | None) -> str:
    """A short age: "42 s", "12 min", "5 h 3 min", "12 days"."""
    if delta is None:
        return "unknown"
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in the future (clock skew?)"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} days ago"


def _moment(value: datetime | None) -> str:
    return "none" if value is None else f"{value:%Y-%m-%d %H:%M:%S} UTC"


def _widget_key(request: TrailRequest) -> str:
    digest = hashlib.sha1(f"{request.title}\0{request.sql}".encode()).hexdigest()[:12]
    return f"trail-count-staged-{digest}"


def lineage_dot(lineage: Lineage) -> str:
    """The lineage as a Graphviz DOT graph, sources at the top and the relations read in bold."""
    lines = ["digraph lineage {", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];']
    for node in lineage.nodes:
        shape = "cylinder" if node.resource_type in ("source", "seed") else "box"
        style = ', style="bold"' if node.unique_id in lineage.read else ""
        lines.append(f'  "{node.unique_id}" [label="{node.relation}", shape={shape}{style}];')
    for node in lineage.nodes:
        for parent in node.parents:
            lines.append(f'  "{parent}" -> "{node.unique_id}";')
    lines.append("}")
    return "\n".join(lines)


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else text


def _sql_block(sql: str) -> None:
    """SQL in a box that scrolls past about 16 lines, so long queries keep the trail short."""
    text = sql.strip()
    st.code(text, language="sql", height=360 if text.count("\n") > 16 else "content")


def _render_sql(trail: Trail) -> None:
    st.markdown("**As executed** (the values are bound parameters, never spliced into the text)")
    _sql_block(trail.sql)
    st.markdown("**With the values substituted** (for reading only)")
    _sql_block(trail.bound_sql)
    if trail.parameters:
        st.markdown(
            "**Parameters**\n"
            + "\n".join(
                f"- {_code('$' + p.name)} = {_code(p.literal)} ({p.type_name})"
                + ("" if p.used else ", not used in the SQL")
                for p in trail.parameters
            )
        )


def _render_lineage(trail: Trail) -> None:
    lineage = trail.lineage
    if lineage is None:
        read = ", ".join(_code(r) for r in trail.relations) or "nothing recognisable"
        st.markdown(f"Reads {read}. Lineage unavailable (see the notes above).")
    else:
        for unique_id in lineage.read:
            node = lineage.node(unique_id)
            if node is not None:
                kind = node.resource_type + (f", {node.materialized}" if node.materialized else "")
                st.markdown(
                    f"Reads **{_code(node.relation)}** ({kind}, {_code(node.path or '?')}). "
                    f"{node.description}"
                )
        by_depth: dict[int, list[str]] = {}
        for node in lineage.nodes:
            if node.depth:
                by_depth.setdefault(node.depth, []).append(
                    f"{_code(node.relation)} ({node.resource_type})"
                )
        if by_depth:
            steps = "\n".join(
                f"- {depth} step{'s' if depth > 1 else ''} up: {', '.join(names)}"
                for depth, names in sorted(by_depth.items())
            )
            st.markdown(f"Built from:\n{steps}")
        st.graphviz_chart(lineage_dot(lineage))
    if trail.source_files:
        shown, total = len(trail.source_files), trail.source_files_total or 0
        heading = (
            f"the {shown} largest of the {total:,} files"
            if total > shown
            else ("the file" if total == 1 else f"the {total:,} files")
        )
        items = "\n".join(
            f"- {_code(f.source_file)}: {f.surveys:,} surveys ({f.channel}; "
            f"{f.source_kind or 'unknown kind'}, {f.load_status or 'no load record'}, "
            f"loaded {_moment(f.loaded_at)}; batch {_code(f.batch_id)})"
            for f in trail.source_files
        )
        st.markdown(
            f"**Source files**: {heading} (per load batch) that the matching surveys' latest "
            f"copies came from\n{items}"
        )


def _render_rows(trail: Trail, request: TrailRequest) -> None:
    if not trail.stages:
        st.markdown("This query reads no survey rows, so there are no stage counts.")
        return
    st.markdown(
        "\n".join(
            f"- {s.stage} {_code(s.relation)}: "
            + ("not counted" if s.rows is None else f"**{s.rows:,}**")
            + f" {'with the filters' if s.filtered else 'in all'}: {s.note}"
            for s in trail.stages
        )
    )
    st.caption(f"Filters: {trail.filters.describe()}")
    if not trail.staged_counted:
        st.toggle("Count staged rows (scans every landed row)", key=_widget_key(request))


def _render_tests(trail: Trail) -> None:
    if trail.lineage is None:
        st.markdown("Tests unavailable (see the notes above).")
        return
    lineage = trail.lineage
    lines = []
    for unique_id in lineage.read:
        node = lineage.node(unique_id)
        statuses = Counter(t.status for t in lineage.tests_on(unique_id))
        summary = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        if node is not None:
            lines.append(f"- on {_code(node.relation)}: {summary or 'none'}")
    statuses = Counter(t.status for t in lineage.tests)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    lines.append(f"- on the whole lineage: {len(lineage.tests)} tests, {summary or 'none'}")
    st.markdown("**dbt tests** (status of the last build that ran each)\n" + "\n".join(lines))
    relation = {n.unique_id: n.relation for n in lineage.nodes}
    st.dataframe(
        pd.DataFrame(
            {
                "on": [", ".join(relation[g] for g in t.guards) for t in lineage.tests],
                "test": [t.name for t in lineage.tests],
                "kind": [t.kind for t in lineage.tests],
                "column": [t.column for t in lineage.tests],
                "status": [t.status for t in lineage.tests],
                "run by the build of": [t.built_at for t in lineage.tests],
            }
        ),
        hide_index=True,
    )


def _render_freshness(trail: Trail, info: SnapshotInfo) -> None:
    fresh = trail.freshness
    text = (
        f"- Snapshot built: {_moment(fresh.published_at)} "
        f"({_ago(fresh.age(fresh.published_at))}), publish id {_code(info.publish_id)}\n"
        f"- Newest survey submitted: {_moment(fresh.newest_submitted_at)} "
        f"({_ago(fresh.age(fresh.newest_submitted_at))})\n"
        f"- Newest row loaded: {_moment(fresh.newest_loaded_at)} "
        f"({_ago(fresh.age(fresh.newest_loaded_at))})"
    )
    if fresh.sources:
        text += "\n\n**Source freshness** when the snapshot was built (`dbt source freshness`)\n"
        text += "\n".join(
            f"- {_code(s.source.removeprefix('source.contrail.'))}: {s.status}, newest loaded_at "
            + (_moment(s.max_loaded_at) if s.max_loaded_at else "none (no rows)")
            + f", checked {_moment(s.checked_at)}"
            + (f", warns after {s.warn_after}" if s.warn_after else "")
            for s in fresh.sources
        )
    st.markdown(text)
    if fresh.note:
        st.caption(fresh.note)


def render_trail(request: TrailRequest, settings: Settings, info: SnapshotInfo) -> None:
    """Write the trail with Streamlit elements, inside the caller's expander."""
    count_staged = True if st.session_state.get(_widget_key(request)) else None
    try:
        trail = build_trail(request, settings, info, count_staged=count_staged)
    except (SnapshotMissing, duckdb.Error, OSError) as error:
        # e.g. the snapshot was removed after the page read it; the number itself still shows
        st.warning(f"The trail of {request.title!r} could not be built: {error}")
        return
    st.caption(
        f"{trail.title} · snapshot built {_moment(info.published_at)} · "
        f"filters: {trail.filters.describe()}"
    )
    for note in trail.notes:
        st.info(note)
    sql_tab, lineage_tab, rows_tab, tests_tab, fresh_tab = st.tabs(
        ["SQL", "Lineage", "Row counts", "Tests", "Freshness"]
    )
    with sql_tab:
        _render_sql(trail)
    with lineage_tab:
        _render_lineage(trail)
    with rows_tab:
        _render_rows(trail, request)
    with tests_tab:
        _render_tests(trail)
    with fresh_tab:
        _render_freshness(trail, info)
