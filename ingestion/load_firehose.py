"""Land Firehose-format delivery objects in ``raw.survey_events``, incrementally.

``load_firehose`` lists the objects of a ``Destination`` (``ingestion.firehose``), skips the
keys ``raw.load_audit`` already records (``source_kind = 'firehose'``), and lands the new ones
in key order. Each object's records, quarantine rows and audit row (one per object) are written
in the same transaction; consecutive objects share a transaction until they hold
``GROUP_RECORDS`` records, and a group commits all or nothing. A crash therefore loses at most
the open group, never part of an object, and a rerun loads the rest, never an object twice.
An object whose bytes equal an object already loaded under another key (a redelivery) is
audited with no rows. When reading or preparing an object fails, the objects before it are
committed and the error is raised.

Throughput (200,000 records in 5 MiB objects, 2 cores): a background thread reads and prepares
(steps 1-4 below) the next objects while this thread inserts; both sides spend their time in
code that releases the GIL. A group of at least one DuckDB row group (122,880 rows) is written
straight to the database file at insert time instead of through the write-ahead log, which
halves the insert and commit cost per record.

Reading an object:

1. GZIP is recognised by its magic bytes. A gzip stream that does not decompress quarantines
   the whole object (one row, reason ``corrupt_gzip``). Byte offsets are offsets in the
   decompressed stream.
2. Framing: records are JSON objects, concatenated with no delimiter (Firehose's default) or one
   per line; both read the same way. All the object's records are typed in one
   ``pyarrow.json`` read, and located without a parser: they start at each ``{"event_id"``
   (numpy), or, for records whose keys come in another order, they are cut at line breaks and
   between ``}{``. The read's row count verifies the cut (see ``_read_fast``). An object that
   read refuses (invalid UTF-8, a truncated record, a ``}{`` inside a value, an ill-typed field)
   is split record by record with ``json.JSONDecoder.raw_decode``; after a bad record reading
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

import gzip
import hashlib
import io
import json
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
from pydantic import ValidationError

from ingestion.config import TARGETS, Settings
from ingestion.enrich import enrich
from ingestion.errors import ContrailError
from ingestion.events import EventEnvelope
from ingestion.schema import (
    ENRICHMENT_COLUMNS,
    LOAD_AUDIT,
    QUARANTINE,
    QUARANTINE_COLUMNS,
    SURVEY_COLUMNS,
    SURVEY_EVENTS,
    SURVEY_EVENTS_COLUMNS,
)
from ingestion.sinks import DuckDBWriter, PostgresWriter
from ingestion.validate import raw_text

if TYPE_CHECKING:
    from ingestion.firehose import Destination

SOURCE_KIND = "firehose"
LAYOUT = "firehose"
GZIP_MAGIC = b"\x1f\x8b"
# Where reading resumes after a bad record of a concatenated object.
RESYNC = '{"event_id"'
# Longest raw_text kept for a quarantined record (a truncated record can run to the object's end).
MAX_RAW_TEXT = 64 * 1024
# Records per transaction: a group of objects commits once it holds this many. At least one
# DuckDB row group (122,880 rows), so that the group's rows bypass the write-ahead log.
GROUP_RECORDS = 131_072
# Objects read and prepared ahead of the one being inserted, and threads preparing them.
AHEAD = 2
PREPARE_THREADS = 2

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
# Two records that cut_records would leave in one piece.
_JOINED = re.compile(rb"\}[ \t\r]+\{")


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


def record_starts(data: bytes) -> np.ndarray:
    """Offsets of every ``{"event_id"`` in ``data`` (vectorised): where our records start."""
    a = np.frombuffer(data, np.uint8)
    pattern = np.frombuffer(RESYNC.encode(), np.uint8)
    found = np.flatnonzero(a[: max(a.size - pattern.size + 1, 0)] == pattern[0])
    for i in range(1, pattern.size):
        found = found[a[found + i] == pattern[i]]
    return found.astype(np.int64)


def cut_records(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end offsets of the candidate records: cut at line breaks and between ``}{``.

    Vectorised; for records that do not start with ``{"event_id"``. A cut inside a record (a
    ``}{`` within a value, a line break in pretty-printed JSON) makes more pieces than the
    typed read has rows, or a piece that is not ``{...}``, and ``_read_fast`` then leaves the
    object to ``split_records``: a cut never joins or splits records unnoticed.
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


def _read_typed(data: bytes) -> pa.Table | None:
    """One pyarrow.json read of the records, or None when any is ill-typed or not JSON.

    The records may be concatenated or one per line: Arrow's parser takes one document after
    another within a block, and the block is the whole input, so no record straddles two.
    """
    try:
        return pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(
                block_size=max(1 << 20, len(data) + 1), use_threads=False
            ),
            parse_options=_PARSE_OPTIONS,
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _column(table: pa.Table, rule: _Rule) -> pa.Array:
    column = table.column(rule.path[0])
    if len(rule.path) == 2:
        column = pc.struct_field(column, rule.path[1])
    return column.combine_chunks()


def _mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _parse_times(values: pa.Array, kind: str) -> tuple[pa.Array, np.ndarray]:
    """Strings already matched by the regex, as timestamps or dates; (array, failed mask)."""
    target = pa.timestamp("us") if kind == "date-time" else pa.date32()
    try:
        return pc.cast(values, target), np.zeros(len(values), bool)
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


_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def _check_integers(
    values: pa.Array, rule: _Rule, present: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """An integer column as int32, and the mask of values within the rule (numpy)."""
    numbers = values.fill_null(0).to_numpy() if values.null_count else values.to_numpy()
    in_range = (numbers >= _INT32_MIN) & (numbers <= _INT32_MAX)
    passed = in_range.copy()
    if rule.minimum is not None:
        passed &= numbers >= rule.minimum
    if rule.maximum is not None:
        passed &= numbers <= rule.maximum
    if rule.values is not None:
        passed &= np.isin(numbers, rule.values)
    narrow = np.where(in_range, numbers, 0).astype(np.int32)
    mask = None if values.null_count == 0 else ~present
    return pa.array(narrow, pa.int32(), mask=mask), passed


def _check_strings(values: pa.Array, rule: _Rule) -> tuple[pa.Array, np.ndarray]:
    """A string, date or date-time column in its warehouse type, and the mask of values within
    the rule (nulls pass here; whether a field is required is checked apart)."""
    checks: list[pa.Array] = []
    if rule.values is not None:
        checks.append(pc.is_in(values, value_set=pa.array(rule.values, values.type)))
    if rule.min_length is not None or rule.max_length is not None:
        lengths = pc.utf8_length(values)
        if rule.min_length is not None:
            checks.append(pc.greater_equal(lengths, rule.min_length))
        if rule.max_length is not None:
            checks.append(pc.less_equal(lengths, rule.max_length))
    if rule.pattern is not None:
        checks.append(pc.match_substring_regex(values, rule.pattern))
    if rule.kind in ("date", "date-time"):
        shape = _NAIVE_TIMESTAMP if rule.kind == "date-time" else _DATE
        matched = pc.match_substring_regex(values, shape)
        checks.append(matched)
        values = pc.if_else(matched, values, pa.scalar(None, pa.string()))
    passed = np.ones(len(values), bool)
    for check in checks:
        passed &= _mask(check)
    if rule.kind in ("date", "date-time"):
        values, failed = _parse_times(values, rule.kind)
        passed &= ~failed
    return values, passed


def check_typed(table: pa.Table) -> tuple[dict[str, pa.Array], np.ndarray]:
    """Each rule's column converted to its warehouse type, and the mask of records that pass.

    Only as strict as, or stricter than, ``EventEnvelope``: a record failing here is judged
    again by the model itself. Integer rules are checked in numpy; a field no record carries
    (most enrichment fields, as the API sends them) costs nothing.
    """
    n = table.num_rows
    ok = np.ones(n, bool)
    columns: dict[str, pa.Array] = {}
    for rule in RULES:
        name = rule.path[-1]
        values = _column(table, rule)
        if values.null_count == n:
            if rule.required:
                ok[:] = False
            columns[name] = pa.nulls(n, ARROW_SQL_TYPES[rule.sql_type])
            continue
        present = np.ones(n, bool) if values.null_count == 0 else _mask(values.is_valid())
        if rule.required:
            ok &= present
        if rule.kind == "integer":
            converted, passed = _check_integers(values, rule, present)
        else:
            converted, passed = _check_strings(values, rule)
        ok &= passed | ~present
        columns[name] = converted
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


def _read_fast(data: bytes) -> tuple[np.ndarray, pa.Table] | None:
    """The records' start offsets and their typed values, or None when the object needs the
    record-by-record path.

    One typed read of the whole object; the records are then located without a parser. When
    every record starts with ``{"event_id"`` (as the API and the replay write them), the
    starts are the positions of that text: it cannot occur inside a JSON string (a quote in a
    string is escaped), and a nested object with an ``event_id`` key fails the typed read, so
    the read's row count equals their number exactly when each record starts at one. Records
    with their keys in another order are cut at line breaks and between ``}{``
    (``cut_records``), accepted when the pieces are as many as the rows and each is a
    ``{...}``, and no ``}`` and ``{`` are apart by spaces alone (two records in one piece).
    The read does not check UTF-8, so the typed strings are validated.
    """
    typed = _read_typed(data)
    if typed is None or typed.num_rows == 0:
        return None
    starts = record_starts(data)
    if starts.size != typed.num_rows:
        starts, ends = cut_records(data)
        a = np.frombuffer(data, np.uint8)
        if (
            starts.size != typed.num_rows
            or not (a[starts] == 0x7B).all()
            or not (a[ends - 1] == 0x7D).all()
            or _JOINED.search(data) is not None
        ):
            return None
    try:
        typed.validate(full=True)  # invalid UTF-8 in a string value
    except pa.ArrowInvalid:
        return None
    return starts, typed


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
    fast = _read_fast(data)
    bad: list[BadRecord] = []
    if fast is not None:
        starts, typed = fast
        pending = np.arange(starts.size)
        stops = np.append(starts[1:], len(data))

        def text(i: int) -> bytes:  # only for the few records the fast checks refuse
            return data[starts[i] : stops[i]].rstrip(b" \t\r\n")

    else:
        spans = split_records(data, key)
        starts = np.array([span.start for span in spans], np.int64)
        for i, span in enumerate(spans):
            if span.error is not None:
                bad.append(_bad(i + 1, span.start, span.text, *span.error))
        pending = np.array([i for i, span in enumerate(spans) if span.error is None], np.int64)
        typed = _read_typed(b"\n".join(spans[i].text for i in pending)) if pending.size else None
        if typed is not None and typed.num_rows != pending.size:
            typed = None

        def text(i: int) -> bytes:
            return spans[i].text

    good_parts: list[tuple[np.ndarray, dict[str, pa.Array]]] = []
    retry = pending
    if typed is not None:
        columns, ok = check_typed(typed)
        if ok.all():
            good_parts.append((pending, columns))
        else:
            keep = pa.array(ok)
            good_parts.append((pending[ok], {k: v.filter(keep) for k, v in columns.items()}))
        retry = pending[~ok]

    # The model judges what the fast path refused; accepted records are normalised and typed.
    renewed: list[tuple[int, bytes]] = []
    for i in retry.tolist():
        record = text(i)
        verdict = _judge(record, key, i + 1, int(starts[i]))
        if isinstance(verdict, EventEnvelope):
            renewed.append((i, _normalised(verdict)))
        else:
            bad.append(_bad(i + 1, int(starts[i]), record, *verdict))
    typed = _read_typed(b"\n".join(record for _, record in renewed)) if renewed else None
    if typed is not None and typed.num_rows == len(renewed):
        columns, ok = check_typed(typed)
    else:
        columns, ok = {}, np.zeros(len(renewed), bool)
    index = np.array([i for i, _ in renewed], np.int64)
    if ok.any():
        good_parts.append((index[ok], {k: v.filter(pa.array(ok)) for k, v in columns.items()}))
    for i in index[~ok].tolist():  # e.g. a delay beyond the warehouse's 32-bit integer column
        detail = (
            f"{key} byte {starts[i]}: record {i + 1}: a value does not fit its "
            "warehouse column (integers are 32-bit); fix the survey fields"
        )
        bad.append(_bad(i + 1, int(starts[i]), text(i), "schema_violation", detail))

    events = _events(starts, good_parts)
    bad.sort(key=lambda b: b.byte_offset)
    return ParsedObject(int(starts.size), events, bad, framing, compression)


def _bad(ordinal: int, start: int, text: bytes, reason: str, detail: str) -> BadRecord:
    shown = raw_text(text[:MAX_RAW_TEXT])
    if len(text) > MAX_RAW_TEXT:
        shown += f"... ({len(text):,} bytes in all)"
    return BadRecord(ordinal, start, reason, detail, shown)


def _event_schema() -> pa.Schema:
    fields = [("source_line", pa.int64()), ("byte_offset", pa.int64())]
    fields += [(r.path[-1], ARROW_SQL_TYPES[r.sql_type]) for r in RULES]
    return pa.schema(fields)


def _empty_events() -> pa.Table:
    return _event_schema().empty_table()


def _events(starts: np.ndarray, parts: list[tuple[np.ndarray, dict[str, pa.Array]]]) -> pa.Table:
    """The good records in record order, with ordinal (1-based) and byte offset."""
    parts = [(index, columns) for index, columns in parts if index.size]
    if not parts:
        return _empty_events()
    schema = _event_schema()
    index = np.concatenate([p[0] for p in parts])
    in_order = len(parts) == 1  # the fast path's records are in order already
    order = np.arange(index.size) if in_order else np.argsort(index, kind="stable")
    ordered = index[order]
    arrays = [pa.array(ordered + 1), pa.array(starts[ordered].astype(np.int64))]
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


_ENRICHMENT_BUILD = threading.Lock()
_enrichment_seeds: set[int] = set()


def warm_enrichment(seed: int) -> None:
    """Build ``enrich``'s cached tables for ``seed`` (about 0.3 s, once per process).

    Under a lock: threads enriching their first objects at the same time would each build
    them. The load starts this in a preparing thread, beside the first object's JSON read.
    """
    if seed in _enrichment_seeds:
        return
    with _ENRICHMENT_BUILD:
        if seed not in _enrichment_seeds:
            enrich(_event_schema().empty_table().select(_SURVEY_NAMES), seed=seed, file_key="")
            _enrichment_seeds.add(seed)


def landed_rows(events: pa.Table, batch: _Batch, seed: int) -> pa.Table:
    """``raw.survey_events`` rows: the records' values, enrichment where they gave none."""
    warm_enrichment(seed)
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


class _FirehoseSink:
    """What both warehouses do the same way for delivery objects (keyed by object key)."""

    # Mixed in before a writer of ingestion.sinks, which provides PARAM, run() and insert().

    def done(self) -> list[tuple[str, str]]:
        return [tuple(row) for row in self.run(_DONE)]

    def key_recorded(self, key: str) -> bool:
        return bool(self.run(_DONE + f" and source_file = {self.PARAM}", [key]))


class _DuckDBSink(_FirehoseSink, DuckDBWriter):
    def lock(self, batch_id: str) -> None:
        """Nothing to do: DuckDB has one writing process, and this load is its only writer."""


class _PostgresSink(_FirehoseSink, PostgresWriter):
    def done(self) -> list[tuple[str, str]]:
        rows = super().done()
        self.conn.commit()
        return rows

    def lock(self, batch_id: str) -> None:
        # A lock per object keeps two loaders from landing the same object. Both take their
        # objects' locks in key order, so two groups never wait on each other in a cycle.
        self.run("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [batch_id])


# --- preparing objects ahead of the insert ----------------------------------------------------


@dataclass(frozen=True)
class PreparedObject:
    """One delivery object read, parsed, validated and enriched: ready to insert."""

    key: str
    body: bytes
    batch: _Batch
    parsed: ParsedObject | None  # None: not parsed, its bytes match an object loaded before
    rows: pa.Table | None  # raw.survey_events rows; None when no record is good
    quarantine: pa.Table | None  # raw.quarantine rows; None when no record is bad


def prepare_object(
    key: str, body: bytes, seed: int, *, sha256: str | None = None, parse: bool = True
) -> PreparedObject:
    """Everything about one object that needs no warehouse: its digest, records and rows."""
    started_at = _now()
    sha = sha256 if sha256 is not None else hashlib.sha256(body).hexdigest()
    batch = _Batch(batch_id_for(key, sha), key, sha, started_at)
    if not parse:
        return PreparedObject(key, body, batch, None, None, None)
    parsed = parse_object(key, body)
    rows = landed_rows(parsed.events, batch, seed) if parsed.events.num_rows else None
    quarantine = _quarantine_table(batch, parsed.bad) if parsed.bad else None
    return PreparedObject(key, body, batch, parsed, rows, quarantine)


class _Prefetch:
    """Reads and prepares the objects in ``PREPARE_THREADS`` background threads, up to
    ``AHEAD`` objects ahead of the one being inserted; iterating yields them in key order.

    Threads, not a process as ``load_csv`` uses: the heavy steps on both sides (sha256,
    Arrow's JSON read and compute kernels, numpy, DuckDB's insert and commit) release the GIL,
    so preparing and inserting overlap on two cores with no copy of the data between
    processes, and the destination is read by this process (``get_object`` must be
    thread-safe, as LocalDirectory and boto3 clients are). Iterating yields each
    ``PreparedObject``, or the exception that preparing one raised, after which it stops.
    """

    def __init__(self, objects: _Objects, keys: list[str], known: set[str], seed: int) -> None:
        self._objects = objects
        self._seed = seed
        # sha256 of the objects loaded or seen so far. Only a hint, read and written by the
        # preparing threads: ``_land`` decides what is a redelivery.
        self._known = set(known)
        self._keys = iter(keys)
        self._executor = ThreadPoolExecutor(
            PREPARE_THREADS, thread_name_prefix="contrail-firehose-prepare"
        )
        self._futures: deque[Future[PreparedObject]] = deque()
        self._executor.submit(warm_enrichment, seed)  # its errors resurface in landed_rows
        for _ in range(AHEAD + 1):
            self._submit()

    def _submit(self) -> None:
        key = next(self._keys, None)
        if key is not None:
            self._futures.append(self._executor.submit(self._prepare, key))

    def _prepare(self, key: str) -> PreparedObject:
        body = self._objects.get_object(key)
        sha = hashlib.sha256(body).hexdigest()
        fresh = sha not in self._known  # a redelivery is not parsed (the insert re-checks)
        self._known.add(sha)
        return prepare_object(key, body, self._seed, sha256=sha, parse=fresh)

    def __iter__(self) -> Iterator[PreparedObject | Exception]:
        while self._futures:
            future = self._futures.popleft()
            try:
                prepared = future.result()
            except Exception as exc:
                yield exc
                return
            self._submit()
            yield prepared

    def close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._executor.shutdown(wait=True)


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


def _land(
    sink: _DuckDBSink | _PostgresSink,
    item: PreparedObject,
    first_keys: Callable[[str], str | None],
    seed: int,
) -> ObjectLoad | None:
    """Insert one object's rows, quarantine rows and audit row in the open transaction.

    None when another loader recorded the key meanwhile. ``first_keys(sha256)`` names the
    object already loaded with the same bytes, if any: then only the audit row is written.
    """
    batch = item.batch
    sink.lock(batch.batch_id)
    if sink.key_recorded(item.key):
        return None
    first_key = first_keys(batch.sha256)
    if first_key is None and item.parsed is None:  # the bytes we skipped did not land after all
        item = prepare_object(item.key, item.body, seed, sha256=batch.sha256)
    parsed = item.parsed if first_key is None else None
    if parsed is None:
        counts = (0, 0, 0)
        reasons: dict[str, int] = {}
        message = (
            f"same bytes as {first_key} (sha256 {batch.sha256[:16]}...), already loaded; its "
            "records were not landed again"
        )
    else:
        counts = (parsed.records, parsed.events.num_rows, len(parsed.bad))
        reasons = _reasons(parsed.bad)
        summary = ", ".join(f"{r} {c:,}" for r, c in reasons.items())
        message = (
            f"{parsed.framing}, compression {parsed.compression}: {counts[1]:,} loaded, "
            f"{counts[2]:,} quarantined" + (f" ({summary})" if summary else "")
        )
        if item.rows is not None:
            sink.insert(SURVEY_EVENTS.qualified, item.rows)
        if item.quarantine is not None:
            sink.insert(QUARANTINE.qualified, item.quarantine)
    sink.insert_audit(
        {
            "batch_id": batch.batch_id,
            "source_kind": SOURCE_KIND,
            "source_file": item.key,
            "file_sha256": batch.sha256,
            "file_bytes": len(item.body),
            "layout": LAYOUT,
            "status": "loaded",
            "rows_in_file": counts[0],
            "rows_loaded": counts[1],
            "rows_quarantined": counts[2],
            "message": message,
            "started_at": batch.loaded_at,
            "finished_at": _now(),
        }
    )
    return ObjectLoad(
        item.key,
        batch.batch_id,
        batch.sha256,
        len(item.body),
        "loaded" if parsed is not None else "duplicate",
        *counts,
        reasons,
    )


def load_firehose(
    settings: Settings,
    *,
    destination: Destination | _Objects | None = None,
    target: str = "duckdb",
    seed: int = 42,
    progress: Callable[[int], None] | None = None,
    group_records: int = GROUP_RECORDS,
) -> FirehoseLoadResult:
    """Land every delivery object not yet recorded in ``raw.load_audit``; see the module doc.

    ``destination`` defaults to the local landing directory (``data/landing/firehose``).
    ``progress`` is called with each object's size in bytes once it is committed.
    ``group_records``: a transaction commits once its objects hold this many records (1 =
    one transaction per object).
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
        keys = objects.list_keys()
        new_keys = [key for key in keys if key not in done_keys]
        skipped = len(keys) - len(new_keys)

        group: list[ObjectLoad] = []  # landed in the open transaction, not yet committed
        group_shas: dict[str, str] = {}
        group_open = False
        group_size = 0  # records in the group

        def first_key(sha: str) -> str | None:
            return loaded_shas.get(sha) or group_shas.get(sha)

        def commit() -> None:
            nonlocal group_open, group_size
            sink.commit()
            group_open, group_size = False, 0
            loads.extend(group)
            for load in group:
                loaded_shas.setdefault(load.file_sha256, load.key)
                if progress is not None:
                    progress(load.file_bytes)
            group.clear()
            group_shas.clear()

        prefetch = _Prefetch(objects, new_keys, set(loaded_shas), seed)
        try:
            for item in prefetch:
                if isinstance(item, Exception):
                    if group_open:
                        commit()  # the objects before it are complete: keep them
                    raise item
                if not group_open:
                    sink.begin()
                    group_open = True
                result = _land(sink, item, first_key, seed)
                if result is None:
                    skipped += 1
                    continue
                group.append(result)
                group_shas.setdefault(result.file_sha256, result.key)
                group_size += result.records
                if group_size >= group_records:
                    commit()
            if group_open:
                commit()
        except BaseException:
            sink.rollback()
            raise
        finally:
            prefetch.close()
    finally:
        sink.close()
    return FirehoseLoadResult(tuple(loads), skipped, time.perf_counter() - clock, target)
