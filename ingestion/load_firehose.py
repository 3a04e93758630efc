"""Land Firehose-format delivery objects in ``raw.survey_events``, incrementally.

``load_firehose`` lists the objects of a ``Destination`` (``ingestion.firehose``), skips the
keys ``raw.load_audit`` already records (``source_kind = 'firehose'``), and loads each new object
in its own transaction: its records, its quarantine rows and its audit row commit together, so an
interrupted run loses nothing and a rerun loads the rest, never an object twice. An object whose
bytes equal an object already loaded under another key (a redelivery) is audited with no rows.

Reading an object:

1. GZIP is recognised by its magic bytes. A gzip stream that does not decompress quarantines
   the whole object (one row, reason ``corrupt_gzip``). Byte offsets are offsets in the
   decompressed stream.
2. Framing: records are JSON objects, concatenated with no delimiter (Firehose's default) or one
   per line; both read the same way. The object is cut at line breaks and between ``}{``
   (numpy), and all its records are typed in one ``pyarrow.json`` read. An object that read
   refuses (invalid UTF-8, a truncated record, a ``}{`` inside a value, an ill-typed field) is
   split record by record with ``json.JSONDecoder.raw_decode``; after a bad record reading
   resumes at the next line or the next ``{"event_id"``.
3. Validation: the typed records are checked column by column against the rules of
   ``ingestion.events.EventEnvelope`` (read from its JSON schema). The few records that fail,
   or an object the fast read refuses, are judged one by one by the pydantic model itself,
   which decides the reason and the message: a wrong envelope, or a schema violation in the
   survey. A record the model accepts in a form the fast path does not (a time zone offset,
   say) is normalised to naive UTC and typed again.
4. Enrichment: ``ingestion.enrich.enrich`` (``file_key`` = the object's sha256, ``first_row`` 0,
   over the good records in order) fills each enrichment column where the record left it null.

Every object reconciles: records received = records loaded + records quarantined.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
from pydantic import ValidationError

from ingestion.config import TARGETS, Settings
from ingestion.enrich import enrich
from ingestion.errors import ContrailError
from ingestion.events import EventEnvelope
from ingestion.schema import (
    ENRICHMENT_COLUMNS,
    LOAD_AUDIT,
    LOAD_AUDIT_COLUMNS,
    QUARANTINE,
    QUARANTINE_COLUMNS,
    SURVEY_COLUMNS,
    SURVEY_EVENTS,
    SURVEY_EVENTS_COLUMNS,
)
from ingestion.validate import raw_text
from ingestion.warehouse import connect_duckdb, connect_postgres, ensure_raw_tables

if TYPE_CHECKING:
    from ingestion.firehose import Destination

SOURCE_KIND = "firehose"
LAYOUT = "firehose"
GZIP_MAGIC = b"\x1f\x8b"
# Where reading resumes after a bad record of a concatenated object.
RESYNC = '{"event_id"'
# Longest raw_text kept for a quarantined record (a truncated record can run to the object's end).
MAX_RAW_TEXT = 64 * 1024
DUCKDB_MEMORY_LIMIT = "512MB"

ARROW_SQL_TYPES: dict[str, pa.DataType] = {
    "varchar": pa.string(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}
_NAIVE_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_BLANKS = re.compile(r"[ \t\r\n]*")


class _Objects(Protocol):
    """What the loader needs of a ``ingestion.firehose.Destination``."""

    def list_keys(self, prefix: str = "") -> list[str]: ...
    def get_object(self, key: str) -> bytes: ...


@dataclass(frozen=True)
class ObjectLoad:
    """What the load did with one delivery object."""

    key: str
    batch_id: str
    file_sha256: str
    file_bytes: int
    status: str  # 'loaded', or 'duplicate' when the same bytes were loaded under another key
    records: int
    loaded: int
    quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.records == self.loaded + self.quarantined


@dataclass(frozen=True)
class FirehoseLoadResult:
    """What one run of the loader did; the CLI prints it."""

    objects: tuple[ObjectLoad, ...]
    skipped: int  # objects listed but already recorded in raw.load_audit
    seconds: float
    target: str

    @property
    def records(self) -> int:
        return sum(o.records for o in self.objects)

    @property
    def loaded(self) -> int:
        return sum(o.loaded for o in self.objects)

    @property
    def quarantined(self) -> int:
        return sum(o.quarantined for o in self.objects)

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for obj in self.objects:
            for reason, count in obj.quarantined_by_reason.items():
                totals[reason] = totals.get(reason, 0) + count
        return dict(sorted(totals.items()))

    @property
    def balanced(self) -> bool:
        return all(o.balanced for o in self.objects)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BadRecord:
    """One refused record (or a whole unreadable object, ``ordinal`` None)."""

    ordinal: int | None
    byte_offset: int
    reason: str
    detail: str
    raw_text: str


@dataclass(frozen=True)
class ParsedObject:
    """A delivery object read and validated: typed good records and the refused ones."""

    records: int
    events: pa.Table  # EVENT + SURVEY + enrichment-as-sent columns, plus source_line
    bad: list[BadRecord]
    framing: str  # 'concatenated', 'ndjson' or 'unreadable'
    compression: str  # 'none' or 'gzip'


# --- the rules of the envelope, read from the pydantic model --------------------------------


@dataclass(frozen=True)
class _Rule:
    path: tuple[str, ...]  # ('event_id',) or ('survey', 'age')
    kind: str  # 'string', 'integer', 'date', 'date-time'
    sql_type: str
    required: bool
    minimum: int | None = None
    maximum: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    values: tuple[Any, ...] | None = None  # enum or const


def _rule(path: tuple[str, ...], prop: dict[str, Any], required: bool) -> _Rule:
    variants = prop.get("anyOf", [prop])
    (base,) = [v for v in variants if v.get("type") != "null"]
    kind = base["type"]
    if base.get("format") in ("date", "date-time"):
        kind = base["format"]
    values = base.get("enum") or (("const" in base and (base["const"],)) or None)
    sql_type = {"string": "varchar", "integer": "integer", "date": "date"}.get(kind, "timestamp")
    return _Rule(
        path,
        kind,
        sql_type,
        required,
        minimum=base.get("minimum"),
        maximum=base.get("maximum"),
        min_length=base.get("minLength"),
        max_length=base.get("maxLength"),
        pattern=base.get("pattern"),
        values=tuple(values) if values else None,
    )


def _rules() -> tuple[_Rule, ...]:
    schema = EventEnvelope.model_json_schema()
    survey = schema["$defs"]["Survey"]
    rules = [
        _rule((name,), prop, name in schema["required"])
        for name, prop in schema["properties"].items()
        if name != "survey"
    ]
    rules += [
        _rule(("survey", name), prop, name in survey["required"])
        for name, prop in survey["properties"].items()
    ]
    return tuple(rules)


RULES = _rules()
_JSON_TYPES = {"string": pa.string(), "integer": pa.int64(), "date": pa.string()}


def _read_type(rule: _Rule) -> pa.DataType:
    return _JSON_TYPES.get(rule.kind, pa.string())


_READ_SCHEMA = pa.schema(
    [
        *((r.path[0], _read_type(r)) for r in RULES if len(r.path) == 1),
        ("survey", pa.struct([(r.path[1], _read_type(r)) for r in RULES if len(r.path) == 2])),
    ]
)
_PARSE_OPTIONS = pajson.ParseOptions(
    explicit_schema=_READ_SCHEMA, unexpected_field_behavior="error"
)
# Columns of a parsed object's events table, in order.
EVENT_NAMES = ("source_line", "byte_offset", *(r.path[-1] for r in RULES))


# --- framing --------------------------------------------------------------------------------


def _decompress(body: bytes) -> tuple[bytes, str]:
    if body[:2] != GZIP_MAGIC:
        return body, "none"
    return gzip.decompress(body), "gzip"


@dataclass(frozen=True)
class _Span:
    start: int  # byte offset
    end: int
    text: bytes
    error: tuple[str, str] | None = None  # (reason, detail)


def cut_records(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the candidate records: cut at line breaks and between ``}{``.

    Vectorised. A cut inside a string (a ``}{`` within a value) leaves two halves that are not
    JSON, so the typed read refuses them and the object is split record by record
    (``split_records``): a cut never joins or splits records unnoticed.
    """
    a = np.frombuffer(data, np.uint8)
    n = a.size
    cuts = np.flatnonzero((a[:-1] == 0x7D) & (a[1:] == 0x7B)) + 1
    lines = np.flatnonzero(a == 0x0A) + 1
    bounds = np.unique(np.concatenate(([0, n], cuts, lines)))
    starts, ends = bounds[:-1].copy(), bounds[1:].copy()
    blank = np.zeros(256, bool)
    blank[[0x20, 0x09, 0x0A, 0x0D]] = True
    while True:  # trim whitespace around each record, one byte per pass
        lead = (starts < ends) & blank[a[np.minimum(starts, n - 1)]]
        trail = (starts < ends) & blank[a[np.maximum(ends - 1, 0)]]
        if not (lead.any() or trail.any()):
            break
        starts[lead] += 1
        ends[trail & (starts < ends)] -= 1
    keep = starts < ends
    return starts[keep].astype(np.int64), ends[keep].astype(np.int64)


def split_records(data: bytes, key: str) -> list[_Span]:
    """Records one by one (slow path): every record, good or bad, with its byte offsets."""
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    spans: list[_Span] = []
    pos, byte_pos, n = 0, 0, len(text)

    def advance(to: int) -> int:
        return len(text[pos:to].encode("utf-8", "surrogateescape"))

    while True:
        skipped = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]
        byte_pos += skipped - pos  # whitespace is ASCII: one byte per character
        pos = skipped
        if pos >= n:
            break
        error: tuple[str, str] | None = None
        try:
            _, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            following = [
                i for i in (text.find("\n", pos + 1), text.find(RESYNC, pos + 1)) if i != -1
            ]
            end = min(following) if following else n
            where = byte_pos + advance(max(exc.pos, pos))
            error = (
                "truncated_json",
                f"{key} byte {byte_pos}: record {len(spans) + 1} is not complete JSON "
                f"({exc.msg}, byte {where}); the producer cut it short or the object was "
                "damaged",
            )
        size = advance(end)
        record = text[pos:end].encode("utf-8", "surrogateescape")
        try:
            record.decode("utf-8")
        except UnicodeDecodeError as exc:
            error = (
                "invalid_utf8",
                f"{key} byte {byte_pos}: record {len(spans) + 1} is not valid UTF-8 (byte "
                f"{byte_pos + exc.start}: {exc.reason}); the producer must send UTF-8 JSON",
            )
        spans.append(_Span(byte_pos, byte_pos + size, record, error))
        byte_pos += size
        pos = end
    return spans


# --- typing and checking ----------------------------------------------------------------------


def _read_typed(lines: bytes) -> pa.Table | None:
    """One pyarrow.json read of newline-separated records, or None when any is ill-typed."""
    try:
        return pajson.read_json(
            io.BytesIO(lines),
            read_options=pajson.ReadOptions(block_size=max(1 << 20, len(lines) + 1)),
            parse_options=_PARSE_OPTIONS,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _column(table: pa.Table, rule: _Rule) -> pa.ChunkedArray:
    column = table.column(rule.path[0])
    if len(rule.path) == 2:
        column = pc.struct_field(column, rule.path[1])
    return column


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _parse_times(values: pa.ChunkedArray, kind: str) -> tuple[pa.Array, np.ndarray]:
    """Strings already matched by the regex, as timestamps or dates; (array, failed mask)."""
    target = pa.timestamp("us") if kind == "date-time" else pa.date32()
    try:
        return pc.cast(values, target).combine_chunks(), np.zeros(len(values), bool)
    except pa.ArrowInvalid:  # e.g. 2026-02-30: parse one by one
        parse = datetime.fromisoformat if kind == "date-time" else date.fromisoformat
        out: list[Any] = []
        for value in values.to_pylist():
            try:
                out.append(None if value is None else parse(value))
            except ValueError:
                out.append(False)
        failed = np.array([v is False for v in out], bool)
        return pa.array([None if v is False else v for v in out], target), failed


def check_typed(table: pa.Table) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Each rule's column converted to its warehouse type, and the mask of records that pass.

    Only as strict as, or stricter than, ``EventEnvelope``: a record failing here is judged
    again by the model itself.
    """
    ok = np.ones(table.num_rows, bool)
    columns: dict[str, pa.Array] = {}
    for rule in RULES:
        values = _column(table, rule)
        valid = pc.is_valid(values)
        if rule.required:
            ok &= _mask(valid)
        checks: list[pa.ChunkedArray] = []
        if rule.values is not None:
            checks.append(pc.is_in(values, value_set=pa.array(rule.values, values.type)))
        if rule.minimum is not None:
            checks.append(pc.greater_equal(values, rule.minimum))
        if rule.maximum is not None:
            checks.append(pc.less_equal(values, rule.maximum))
        if rule.min_length is not None:
            checks.append(pc.greater_equal(pc.utf8_length(values), rule.min_length))
        if rule.max_length is not None:
            checks.append(pc.less_equal(pc.utf8_length(values), rule.max_length))
        if rule.pattern is not None:
            checks.append(pc.match_substring_regex(values, rule.pattern))
        if rule.kind in ("date", "date-time"):
            shape = _NAIVE_TIMESTAMP if rule.kind == "date-time" else _DATE
            matched = pc.match_substring_regex(values, shape)
            checks.append(matched)
            values = pc.if_else(matched, values, pa.scalar(None, pa.string()))
        for check in checks:
            ok &= _mask(pc.or_kleene(pc.invert(valid), check))
        if rule.kind in ("date", "date-time"):
            converted, failed = _parse_times(values, rule.kind)
            ok &= ~failed
        elif rule.kind == "integer":
            in_range = pc.and_(pc.greater_equal(values, -(2**31)), pc.less_equal(values, 2**31 - 1))
            ok &= _mask(pc.or_kleene(pc.invert(valid), in_range))
            safe = pc.if_else(in_range, values, pa.scalar(None, pa.int64()))
            converted = pc.cast(safe, pa.int32()).combine_chunks()
        else:
            converted = values.combine_chunks()
        columns[rule.path[-1]] = converted
    return columns, ok


def _judge(text: bytes, key: str, ordinal: int, offset: int) -> tuple[str, str] | EventEnvelope:
    """The model's verdict on one record: the envelope, or (reason, detail)."""
    try:
        return EventEnvelope.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        reason = "truncated_json"
    elif any(len(e["loc"]) >= 2 and e["loc"][0] == "survey" for e in errors):
        reason = "schema_violation"
    else:
        reason = "wrong_envelope"
    shown = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}"
        + (f" (got {json.dumps(e['input'])[:60]})" if _is_scalar(e.get("input")) else "")
        for e in errors[:5]
    )
    more = f"; and {len(errors) - 5} more" if len(errors) > 5 else ""
    where = f"{key} byte {offset}: record {ordinal}"
    if reason == "wrong_envelope":
        hint = (
            "an event needs exactly event_id, event_type 'survey_submitted', schema_version 1, "
            "submitted_at and survey"
        )
    else:
        hint = "fix the survey fields (see ingestion.events.Survey)"
    return reason, f"{where}: {shown}{more}; {hint}"


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _normalised(envelope: EventEnvelope) -> bytes:
    """The envelope as JSON the fast path accepts: times naive UTC, nulls left out."""

    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value.isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return value

    data = envelope.model_dump(exclude_none=True)
    data["survey"] = {k: plain(v) for k, v in data["survey"].items()}
    return json.dumps({k: plain(v) for k, v in data.items()}).encode()


def _lines(spans: list[_Span]) -> bytes:
    return b"\n".join(span.text for span in spans)


def parse_object(key: str, body: bytes) -> ParsedObject:
    """Read one delivery object: typed good records and every refused one (see module doc)."""
    try:
        data, compression = _decompress(body)
    except (OSError, EOFError, zlib.error) as exc:
        detail = (
            f"{key}: the object starts like GZIP but does not decompress ({exc}); the whole "
            f"object ({len(body):,} bytes) is quarantined. Re-deliver it from the producer."
        )
        bad = BadRecord(None, 0, "corrupt_gzip", detail, f"<{len(body)} bytes of gzip>")
        return ParsedObject(1, _empty_events(), [bad], "unreadable", "gzip")

    framing = "ndjson" if b"}\n" in data[:65536] else "concatenated"
    spans: list[_Span] | None = None
    typed: pa.Table | None = None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        starts, ends = cut_records(data)
        typed = _read_typed(data.replace(b"}{", b"}\n{")) if starts.size else None
        if typed is not None and typed.num_rows == starts.size:
            spans = [_Span(s, e, b"") for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
            pending = list(range(len(spans)))
        typed = typed if spans is not None else None
    if spans is None:
        spans = split_records(data, key)
        pending = [i for i, span in enumerate(spans) if span.error is None]
        if pending:
            typed = _read_typed(_lines([spans[i] for i in pending]))
            if typed is not None and typed.num_rows != len(pending):
                typed = None

    bad = [_bad(span, i + 1, *span.error) for i, span in enumerate(spans) if span.error]
    ordinals = np.arange(1, len(spans) + 1)
    good_parts: list[tuple[np.ndarray, dict[str, pa.Array]]] = []
    retry: list[int] = pending
    if typed is not None:
        columns, ok = check_typed(typed)
        index = np.array(pending, np.int64)
        good_parts.append((index[ok], {k: v.filter(pa.array(ok)) for k, v in columns.items()}))
        retry = index[~ok].tolist()

    # The model judges what the fast path refused; accepted records are normalised and typed.
    renewed: list[tuple[int, bytes]] = []
    for i in retry:
        if not spans[i].text:
            spans[i] = _Span(spans[i].start, spans[i].end, data[spans[i].start : spans[i].end])
        verdict = _judge(spans[i].text, key, i + 1, spans[i].start)
        if isinstance(verdict, EventEnvelope):
            renewed.append((i, _normalised(verdict)))
        else:
            bad.append(_bad(spans[i], i + 1, *verdict))
    typed = _read_typed(b"\n".join(text for _, text in renewed)) if renewed else None
    if typed is not None and typed.num_rows == len(renewed):
        columns, ok = check_typed(typed)
    else:
        columns, ok = {}, np.zeros(len(renewed), bool)
    index = np.array([i for i, _ in renewed], np.int64)
    if ok.any():
        good_parts.append((index[ok], {k: v.filter(pa.array(ok)) for k, v in columns.items()}))
    for i in index[~ok].tolist():  # e.g. a delay beyond the warehouse's 32-bit integer column
        detail = (
            f"{key} byte {spans[i].start}: record {i + 1}: a value does not fit its "
            "warehouse column (integers are 32-bit); fix the survey fields"
        )
        bad.append(_bad(spans[i], i + 1, "schema_violation", detail))

    events = _events(spans, ordinals, good_parts)
    bad.sort(key=lambda b: b.byte_offset)
    return ParsedObject(len(spans), events, bad, framing, compression)


def _bad(span: _Span, ordinal: int, reason: str, detail: str) -> BadRecord:
    text = raw_text(span.text[:MAX_RAW_TEXT])
    if len(span.text) > MAX_RAW_TEXT:
        text += f"... ({len(span.text):,} bytes in all)"
    return BadRecord(ordinal, span.start, reason, detail, text)


def _event_schema() -> pa.Schema:
    fields = [("source_line", pa.int64()), ("byte_offset", pa.int64())]
    fields += [(r.path[-1], ARROW_SQL_TYPES[r.sql_type]) for r in RULES]
    return pa.schema(fields)


def _empty_events() -> pa.Table:
    return _event_schema().empty_table()


def _events(
    spans: list[_Span],
    ordinals: np.ndarray,
    parts: list[tuple[np.ndarray, dict[str, pa.Array]]],
) -> pa.Table:
    """The good records in record order, with ordinal and byte offset."""
    parts = [(index, columns) for index, columns in parts if index.size]
    if not parts:
        return _empty_events()
    schema = _event_schema()
    index = np.concatenate([p[0] for p in parts])
    in_order = len(parts) == 1  # the fast path's records are in order already
    order = np.arange(index.size) if in_order else np.argsort(index, kind="stable")
    starts = np.fromiter((spans[i].start for i in index.tolist()), np.int64, index.size)
    arrays = [pa.array(ordinals[index][order]), pa.array(starts[order])]
    take = pa.array(order)
    for name in schema.names[2:]:
        target = schema.field(name).type
        column = pa.concat_arrays([pc.cast(p[1][name], target) for p in parts])
        arrays.append(column if in_order else column.take(take))
    return pa.Table.from_arrays(arrays, schema=schema)


# --- enrichment and the landed rows ---------------------------------------------------------

_SURVEY_NAMES = [name for name, _ in SURVEY_COLUMNS]
_ENRICHMENT_NAMES = [name for name, _ in ENRICHMENT_COLUMNS]
_ROW_NAMES = [name for name, _ in SURVEY_EVENTS_COLUMNS]


@dataclass(frozen=True)
class _Batch:
    batch_id: str
    key: str
    sha256: str
    loaded_at: datetime


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def batch_id_for(key: str, sha256: str) -> str:
    """One batch per (key, bytes): 'firehose-' + 16 hex digits."""
    return "firehose-" + hashlib.sha256(f"{key}\0{sha256}".encode()).hexdigest()[:16]


def landed_rows(events: pa.Table, batch: _Batch, seed: int) -> pa.Table:
    """``raw.survey_events`` rows: the records' values, enrichment where they gave none."""
    n = events.num_rows
    survey = events.select(_SURVEY_NAMES)
    enriched = enrich(survey, seed=seed, file_key=batch.sha256, first_row=0)
    zeros = np.zeros(n, np.int32)

    def constant(value: object, arrow_type: pa.DataType) -> pa.Array:
        return pc.take(pa.array([value], arrow_type), zeros)

    arrays: dict[str, Any] = {
        "batch_id": constant(batch.batch_id, pa.string()),
        "source_file": constant(batch.key, pa.string()),
        "source_line": events.column("source_line"),
        "file_sha256": constant(batch.sha256, pa.string()),
        "loaded_at": constant(batch.loaded_at, pa.timestamp("us")),
    }
    for name in _ENRICHMENT_NAMES:
        arrays[name] = pc.coalesce(events.column(name), enriched.column(name))
    for name, sql_type in SURVEY_EVENTS_COLUMNS:
        if name not in arrays:
            arrays[name] = pc.cast(events.column(name), ARROW_SQL_TYPES[sql_type])
    return pa.table([arrays[name] for name in _ROW_NAMES], names=_ROW_NAMES)


def _quarantine_table(batch: _Batch, rows: list[BadRecord]) -> pa.Table:
    n = len(rows)
    columns = {
        "batch_id": pa.array([batch.batch_id] * n, pa.string()),
        "source_kind": pa.array([SOURCE_KIND] * n, pa.string()),
        "source_file": pa.array([batch.key] * n, pa.string()),
        "file_sha256": pa.array([batch.sha256] * n, pa.string()),
        "source_line": pa.array([r.ordinal for r in rows], pa.int64()),
        "byte_offset": pa.array([r.byte_offset for r in rows], pa.int64()),
        "reason": pa.array([r.reason for r in rows], pa.string()),
        "detail": pa.array([r.detail for r in rows], pa.string()),
        "raw_text": pa.array([r.raw_text for r in rows], pa.string()),
        "quarantined_at": pa.array([batch.loaded_at] * n, pa.timestamp("us")),
    }
    return pa.table([columns[name] for name, _ in QUARANTINE_COLUMNS], names=list(columns))


# --- warehouse sinks --------------------------------------------------------------------------

_DONE = (
    f"select source_file, file_sha256 from {LOAD_AUDIT.qualified} "
    f"where source_kind = '{SOURCE_KIND}' and status in ('loaded', 'replaced')"
)


class _DuckDBSink:
    def __init__(self, settings: Settings) -> None:
        self.conn = connect_duckdb(settings.warehouse_path)
        ensure_raw_tables(self.conn)
        self.conn.execute(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'").fetchall()

    def done(self) -> list[tuple[str, str]]:
        return [tuple(row) for row in self.conn.execute(_DONE).fetchall()]

    def begin(self, batch_id: str) -> None:
        self.conn.begin()

    def key_recorded(self, key: str) -> bool:
        sql = _DONE + " and source_file = ?"
        return bool(self.conn.execute(sql, [key]).fetchall())

    def insert(self, table_name: str, table: pa.Table) -> None:
        contrail_rows = table  # noqa: F841 (read by DuckDB by name, from this frame)
        columns = ", ".join(table.column_names)
        self.conn.execute(
            f"insert into {table_name} ({columns}) select {columns} from contrail_rows"
        ).fetchall()

    def insert_audit(self, row: dict[str, Any]) -> None:
        names = [name for name, _ in LOAD_AUDIT_COLUMNS]
        self.conn.execute(
            f"insert into {LOAD_AUDIT.qualified} ({', '.join(names)}) "
            f"values ({', '.join('?' for _ in names)})",
            [row[name] for name in names],
        ).fetchall()

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction open
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


class _PostgresSink:
    def __init__(self, settings: Settings) -> None:
        self.conn = connect_postgres(settings.postgres)
        ensure_raw_tables(self.conn)
        self.cur = self.conn.cursor()

    def done(self) -> list[tuple[str, str]]:
        self.cur.execute(_DONE)
        rows = [tuple(row) for row in self.cur.fetchall()]
        self.conn.commit()
        return rows

    def begin(self, batch_id: str) -> None:
        # A lock per object keeps two loaders from landing the same object.
        self.cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [batch_id])

    def key_recorded(self, key: str) -> bool:
        self.cur.execute(_DONE + " and source_file = %s", [key])
        return bool(self.cur.fetchall())

    def insert(self, table_name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        columns = ", ".join(table.column_names)
        self.cur.copy_expert(
            f"copy {table_name} ({columns}) from stdin with (format csv)", buffer, size=1 << 20
        )

    def insert_audit(self, row: dict[str, Any]) -> None:
        names = [name for name, _ in LOAD_AUDIT_COLUMNS]
        self.cur.execute(
            f"insert into {LOAD_AUDIT.qualified} ({', '.join(names)}) "
            f"values ({', '.join('%s' for _ in names)})",
            [row[name] for name in names],
        )

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


# --- the load ---------------------------------------------------------------------------------


def delivery_root(settings: Settings) -> Path:
    """Where the delivery buffer writes, and ``contrail load firehose`` reads, by default."""
    return settings.data_dir / "landing" / "firehose"


def default_destination(settings: Settings) -> _Objects:
    """The local landing directory, as a ``Destination``."""
    from ingestion.firehose import LocalDirectory

    return LocalDirectory(delivery_root(settings))


def _reasons(bad: list[BadRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in bad:
        counts[row.reason] = counts.get(row.reason, 0) + 1
    return dict(sorted(counts.items()))


def _load_one(
    sink: _DuckDBSink | _PostgresSink,
    key: str,
    body: bytes,
    loaded_shas: dict[str, str],
    seed: int,
) -> ObjectLoad | None:
    """Load one object in one transaction; None when another loader recorded it meanwhile."""
    started_at = _now()
    sha = hashlib.sha256(body).hexdigest()
    batch = _Batch(batch_id_for(key, sha), key, sha, started_at)
    audit: dict[str, Any] = {
        "batch_id": batch.batch_id,
        "source_kind": SOURCE_KIND,
        "source_file": key,
        "file_sha256": sha,
        "file_bytes": len(body),
        "layout": LAYOUT,
        "status": "loaded",
        "started_at": started_at,
    }
    first_key = loaded_shas.get(sha)
    if first_key is not None:
        parsed = None
        counts = (0, 0, 0)
        message = (
            f"same bytes as {first_key} (sha256 {sha[:16]}...), already loaded; its records "
            "were not landed again"
        )
    else:
        parsed = parse_object(key, body)
        rows = landed_rows(parsed.events, batch, seed) if parsed.events.num_rows else None
        loaded = parsed.events.num_rows
        counts = (parsed.records, loaded, len(parsed.bad))
        summary = ", ".join(f"{r} {c:,}" for r, c in _reasons(parsed.bad).items())
        message = (
            f"{parsed.framing}, compression {parsed.compression}: {loaded:,} loaded, "
            f"{len(parsed.bad):,} quarantined" + (f" ({summary})" if summary else "")
        )
    try:
        sink.begin(batch.batch_id)
        if sink.key_recorded(key):
            sink.rollback()
            return None
        if parsed is not None:
            if rows is not None:
                sink.insert(SURVEY_EVENTS.qualified, rows)
            if parsed.bad:
                sink.insert(QUARANTINE.qualified, _quarantine_table(batch, parsed.bad))
        sink.insert_audit(
            {
                **audit,
                "rows_in_file": counts[0],
                "rows_loaded": counts[1],
                "rows_quarantined": counts[2],
                "message": message,
                "finished_at": _now(),
            }
        )
        sink.commit()
    except BaseException:
        sink.rollback()
        raise
    loaded_shas.setdefault(sha, key)
    return ObjectLoad(
        key,
        batch.batch_id,
        sha,
        len(body),
        "loaded" if parsed is not None else "duplicate",
        *counts,
        _reasons(parsed.bad) if parsed is not None else {},
    )


def load_firehose(
    settings: Settings,
    *,
    destination: Destination | _Objects | None = None,
    target: str = "duckdb",
    seed: int = 42,
    progress: Callable[[int], None] | None = None,
) -> FirehoseLoadResult:
    """Land every delivery object not yet recorded in ``raw.load_audit``; see the module doc.

    ``destination`` defaults to the local landing directory (``data/landing/firehose``).
    ``progress`` is called with each object's size in bytes once it is committed.
    """
    clock = time.perf_counter()
    if target not in TARGETS:
        raise ContrailError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    objects = destination if destination is not None else default_destination(settings)
    sink: _DuckDBSink | _PostgresSink = (
        _DuckDBSink(settings) if target == "duckdb" else _PostgresSink(settings)
    )
    loads: list[ObjectLoad] = []
    skipped = 0
    try:
        done = sink.done()
        done_keys = {key for key, _ in done}
        loaded_shas = {sha: key for key, sha in sorted(done)}
        for key in objects.list_keys():
            if key in done_keys:
                skipped += 1
                continue
            body = objects.get_object(key)
            result = _load_one(sink, key, body, loaded_shas, seed)
            if result is None:
                skipped += 1
                continue
            loads.append(result)
            done_keys.add(key)
            if progress is not None:
                progress(len(body))
    finally:
        sink.close()
    return FirehoseLoadResult(tuple(loads), skipped, time.perf_counter() - clock, target)
