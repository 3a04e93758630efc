"""Land one CSV export in the raw tables: validated, enriched, audited, all or nothing.

A load reads the file twice: once to fingerprint it (sha256 and line count; a file already
loaded stops here), then in blocks of about ``settings.chunk_rows`` lines that are parsed,
validated, enriched and inserted inside ONE transaction together with the quarantine rows and
the audit row. A crash part-way therefore leaves nothing of the file behind.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingestion.config import TARGETS, Settings
from ingestion.enrich import enrich
from ingestion.errors import ContrailError
from ingestion.layouts import PUBLIC_LAYOUTS, Layout, detect_layout, load_mapping, resolve_layout
from ingestion.reader import BlockReader, fingerprint, parse_header
from ingestion.schema import (
    ENRICHMENT_COLUMNS,
    LOAD_AUDIT,
    LOAD_AUDIT_COLUMNS,
    QUARANTINE,
    QUARANTINE_COLUMNS,
    SURVEY_COLUMNS,
    SURVEY_RESPONSES,
    SURVEY_RESPONSES_COLUMNS,
)
from ingestion.validate import BadRow, BlockParser, ParsedBlock
from ingestion.warehouse import connect_duckdb, connect_postgres, ensure_raw_tables

T = TypeVar("T")

SOURCE_KIND = "csv"
# Bad-row examples a rejection message shows.
EXAMPLES = 5
# DuckDB's memory during a load (its buffer cache would otherwise grow with the file).
DUCKDB_MEMORY_LIMIT = "512MB"
# First guess of bytes per line, before the first block tells.
GUESS_LINE_BYTES = 128


@dataclass(frozen=True)
class LoadResult:
    """What one load did; the CLI prints it."""

    batch_id: str
    source_file: str
    file_sha256: str
    layout: str
    status: str  # 'loaded' | 'replaced' | 'skipped_duplicate' | 'rejected'
    rows_in_file: int
    rows_loaded: int
    rows_quarantined: int
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    target: str = "duckdb"

    @property
    def balanced(self) -> bool:
        return self.rows_in_file == self.rows_loaded + self.rows_quarantined


@dataclass(frozen=True)
class _Batch:
    batch_id: str
    source_file: str
    sha256: str
    loaded_at: datetime


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def batch_id_for(sha256: str) -> str:
    return f"{SOURCE_KIND}-{sha256[:16]}"


def choose_layout(header: list[str], layout: str, mapping: Path | None, source: str) -> Layout:
    """The layout for a header: a mapping file, a named public layout, or detection."""
    if mapping is not None:
        if layout not in ("auto", "mapping"):
            raise ContrailError(f"--layout {layout} and --mapping exclude each other; pass one")
        return resolve_layout(load_mapping(mapping), header, source=source)
    if layout == "auto":
        return detect_layout(header, source=source)
    if layout not in PUBLIC_LAYOUTS:
        raise ContrailError(
            f"unknown layout {layout!r}; use auto, {', '.join(PUBLIC_LAYOUTS)}, "
            "or --mapping FILE.yml"
        )
    return resolve_layout(PUBLIC_LAYOUTS[layout], header, source=source)


# --- warehouse sinks --------------------------------------------------------------------------

_ROW_NAMES = [name for name, _ in SURVEY_RESPONSES_COLUMNS]
_BODY_NAMES = ["source_line", *(n for n, _ in ENRICHMENT_COLUMNS), *(n for n, _ in SURVEY_COLUMNS)]
_LOADED_STATUSES = ("loaded", "replaced")


def _quarantine_table(batch: _Batch, rows: list[BadRow]) -> pa.Table:
    n = len(rows)
    columns = {
        "batch_id": pa.array([batch.batch_id] * n, pa.string()),
        "source_kind": pa.array([SOURCE_KIND] * n, pa.string()),
        "source_file": pa.array([batch.source_file] * n, pa.string()),
        "file_sha256": pa.array([batch.sha256] * n, pa.string()),
        "source_line": pa.array([r.line for r in rows], pa.int64()),
        "byte_offset": pa.nulls(n, pa.int64()),
        "reason": pa.array([r.reason for r in rows], pa.string()),
        "detail": pa.array([r.detail for r in rows], pa.string()),
        "raw_text": pa.array([r.raw_text for r in rows], pa.string()),
        "quarantined_at": pa.array([batch.loaded_at] * n, pa.timestamp("us")),
    }
    return pa.table([columns[name] for name, _ in QUARANTINE_COLUMNS], names=list(columns))


class _DuckDBSink:
    def __init__(self, settings: Settings) -> None:
        self.conn = connect_duckdb(settings.warehouse_path)
        ensure_raw_tables(self.conn)
        # One insert thread: the other core parses and enriches the next block meanwhile.
        # Measured on 2 cores, two insert threads were slower end to end, since their row
        # groups were rewritten at the closing checkpoint.
        self._run("set threads = 1")
        # Written blocks stay cached up to the memory limit (80% of RAM by default); a load
        # streams, so it needs little. This keeps a 10M-row load's peak RSS well under 2 GB.
        self._run(f"set memory_limit = '{DUCKDB_MEMORY_LIMIT}'")

    def begin(self, batch_id: str) -> None:
        self.conn.begin()

    def loaded_before(self, sha256: str) -> bool:
        rows = self._run(
            f"select count(*) from {LOAD_AUDIT.qualified} "
            "where file_sha256 = ? and status in ('loaded', 'replaced')",
            [sha256],
        )
        return bool(rows[0][0])

    def _run(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Execute and drain the result (DuckDB wants it drained before the next statement)."""
        return self.conn.execute(sql, params or []).fetchall()

    def delete_batch(self, sha256: str) -> None:
        for table in (SURVEY_RESPONSES, QUARANTINE, LOAD_AUDIT):
            self._run(f"delete from {table.qualified} where file_sha256 = ?", [sha256])

    # Arrow tables reach DuckDB by replacement scan (a local variable named in the SQL), not by
    # conn.register(): a view registered inside a transaction is kept, with its data, until
    # the transaction ends, so a long load would hold every block in memory.

    def insert_rows(self, batch: _Batch, body: pa.Table) -> None:
        columns = ", ".join(_ROW_NAMES)
        selected = ", ".join(["?", "?", "source_line", "?", "?", *_BODY_NAMES[1:]])
        contrail_rows = body  # noqa: F841 (read by DuckDB by name, from this frame)
        self.conn.execute(
            f"insert into {SURVEY_RESPONSES.qualified} ({columns}) "
            f"select {selected} from contrail_rows",
            [batch.batch_id, batch.source_file, batch.sha256, batch.loaded_at],
        ).fetchall()

    def insert_quarantine(self, batch: _Batch, rows: list[BadRow]) -> None:
        contrail_quarantine = _quarantine_table(batch, rows)  # noqa: F841 (read by DuckDB)
        self.conn.execute(
            f"insert into {QUARANTINE.qualified} select * from contrail_quarantine"
        ).fetchall()

    def insert_audit(self, row: dict[str, Any]) -> None:
        names = [name for name, _ in LOAD_AUDIT_COLUMNS]
        self._run(
            f"insert into {LOAD_AUDIT.qualified} ({', '.join(names)}) "
            f"values ({', '.join('?' for _ in names)})",
            [row[name] for name in names],
        )

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

    def begin(self, batch_id: str) -> None:
        # psycopg2 opens the transaction; a lock per batch keeps two loads of one file apart.
        self.cur.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [batch_id])

    def loaded_before(self, sha256: str) -> bool:
        self.cur.execute(
            f"select count(*) from {LOAD_AUDIT.qualified} "
            "where file_sha256 = %s and status in ('loaded', 'replaced')",
            [sha256],
        )
        return bool(self.cur.fetchone()[0])

    def delete_batch(self, sha256: str) -> None:
        for table in (SURVEY_RESPONSES, QUARANTINE, LOAD_AUDIT):
            self.cur.execute(f"delete from {table.qualified} where file_sha256 = %s", [sha256])

    def _copy(self, table_name: str, table: pa.Table) -> None:
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        buffer.seek(0)
        columns = ", ".join(table.column_names)
        self.cur.copy_expert(
            f"copy {table_name} ({columns}) from stdin with (format csv)", buffer, size=1 << 20
        )

    def insert_rows(self, batch: _Batch, body: pa.Table) -> None:
        n = body.num_rows
        zeros = np.zeros(n, dtype=np.int32)

        def constant(value: object, arrow_type: pa.DataType) -> pa.Array:
            return pc.take(pa.array([value], arrow_type), zeros)

        metadata = {
            "batch_id": constant(batch.batch_id, pa.string()),
            "source_file": constant(batch.source_file, pa.string()),
            "source_line": body.column("source_line"),
            "file_sha256": constant(batch.sha256, pa.string()),
            "loaded_at": constant(batch.loaded_at, pa.timestamp("us")),
        }
        arrays = [metadata[n] if n in metadata else body.column(n) for n in _ROW_NAMES]
        self._copy(SURVEY_RESPONSES.qualified, pa.table(arrays, names=_ROW_NAMES))

    def insert_quarantine(self, batch: _Batch, rows: list[BadRow]) -> None:
        self._copy(QUARANTINE.qualified, _quarantine_table(batch, rows))

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


def _open_sink(target: str, settings: Settings) -> _DuckDBSink | _PostgresSink:
    if target == "duckdb":
        return _DuckDBSink(settings)
    return _PostgresSink(settings)


# --- the load ---------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Running counts over a file's blocks; past ``limit`` bad rows the file is rejected."""

    limit: float
    lines: int = 0
    bad: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[BadRow] = field(default_factory=list)

    @property
    def tripped(self) -> bool:
        return self.bad > self.limit

    def add(self, parsed: ParsedBlock) -> None:
        self.lines += parsed.n_lines
        self.bad += parsed.bad_count
        for reason, count in parsed.bad_reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.examples.extend(parsed.bad_rows[: max(0, EXAMPLES - len(self.examples))])


def _prepare(
    blocks: BlockReader,
    parser: BlockParser,
    tally: _Tally,
    chunk_rows: int,
    file_key: str,
    seed: int,
) -> Iterator[tuple[list[BadRow], pa.Table | None]]:
    """Per block: its quarantine rows and its enriched good rows (without load metadata).

    Once the file is sure to be rejected, blocks are only counted, not enriched.
    """
    for buf, first_line in blocks:
        parsed = parser.parse(buf, first_line, keep_bad=EXAMPLES if tally.tripped else None)
        tally.add(parsed)
        blocks.block_bytes = max(64 << 10, chunk_rows * len(buf) // max(parsed.n_lines, 1))
        if tally.tripped or parsed.survey is None:
            yield [], None
            continue
        survey = parsed.survey
        enriched = enrich(survey, seed=seed, file_key=file_key, first_row=first_line - 2)
        if parsed.good is not None:
            mask = pa.array(parsed.good)
            survey, enriched = survey.filter(mask), enriched.filter(mask)
        body = pa.Table.from_arrays(
            [pa.array(parsed.good_lines), *enriched.columns, *survey.columns],
            names=_BODY_NAMES,
        )
        yield parsed.bad_rows, body


_DONE = object()


def _in_background(items: Iterator[T]) -> Iterator[T]:
    """Run an iterator in a worker thread, one item ahead, so that parsing and enrichment of
    the next block overlap the warehouse insert of this one. Errors re-raise here."""
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        handoff.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(("done", _DONE))
        except BaseException as exc:  # handed to the consumer
            handoff.put(("error", exc))

    worker = threading.Thread(target=work, name="contrail-load-prepare", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                handoff.get_nowait()
            worker.join(timeout=0.1)


def _rejection(source: str, bad: int, rows: int, share: float, reasons, examples) -> str:
    counts = ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items()))
    shown = "; ".join(f"{row.reason}: {row.detail}" for row in examples)
    return (
        f"{source}: rejected, {bad:,} of {rows:,} rows are bad ({bad / rows:.1%}, more than "
        f"the allowed {share:.1%}); nothing was loaded. Reasons: {counts}. "
        f"First examples: {shown}. Fix the export, or raise the limit with --max-bad-share."
    )


def load_csv(
    path: Path,
    settings: Settings,
    *,
    target: str = "duckdb",
    layout: str = "auto",
    mapping: Path | None = None,
    force: bool = False,
    seed: int = 42,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Land one CSV export (plain or gzip) in ``raw.survey_responses``; see the module doc.

    Returns the outcome ('loaded', 'replaced' or 'skipped_duplicate'). A file with more than
    ``settings.max_bad_share`` bad rows lands nothing, is audited as 'rejected', and raises
    ContrailError with the reasons.
    """
    clock = time.perf_counter()
    started_at = _now()
    if target not in TARGETS:
        raise ContrailError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    path = Path(path)
    source = str(path)
    print_ = fingerprint(path)
    batch = _Batch(batch_id_for(print_.sha256), str(path.resolve()), print_.sha256, started_at)
    rows_in_file = print_.rows_in_file

    def result(status: str, loaded: int, quarantined: int, reasons: dict[str, int]):
        return LoadResult(
            batch.batch_id,
            batch.source_file,
            batch.sha256,
            chosen.name,
            status,
            rows_in_file,
            loaded,
            quarantined,
            dict(sorted(reasons.items())),
            time.perf_counter() - clock,
            target,
        )

    block_bytes = max(64 << 10, settings.chunk_rows * GUESS_LINE_BYTES)
    with BlockReader(path, block_bytes=block_bytes, progress=progress) as blocks:
        header, header_bytes = parse_header(blocks.header_bytes, source)
        chosen = choose_layout(header, layout, mapping, source)
        if rows_in_file == 0:
            raise ContrailError(f"{source}: the file has a header but no data rows")
        parser = BlockParser(chosen, header_bytes)
        limit = settings.max_bad_share * rows_in_file

        sink = _open_sink(target, settings)
        try:
            sink.begin(batch.batch_id)
            replacing = sink.loaded_before(batch.sha256)
            if replacing and not force:
                sink.rollback()
                return result("skipped_duplicate", 0, 0, {})
            if force:
                sink.delete_batch(batch.sha256)

            loaded = 0
            tally = _Tally(limit)
            work = _prepare(blocks, parser, tally, settings.chunk_rows, batch.sha256, seed)
            for bad_rows, body in _in_background(work):
                if tally.tripped:
                    continue  # the file will be rejected: land nothing more
                if bad_rows:
                    sink.insert_quarantine(batch, bad_rows)
                if body is not None:
                    sink.insert_rows(batch, body)
                    loaded += body.num_rows
            bad, reasons, examples, lines_seen = (
                tally.bad,
                tally.reasons,
                tally.examples,
                tally.lines,
            )

            if lines_seen != rows_in_file:
                raise ContrailError(
                    f"{source}: the file changed while loading ({rows_in_file:,} data lines "
                    f"at first, {lines_seen:,} now); nothing was loaded, retry"
                )
            audit = {
                "batch_id": batch.batch_id,
                "source_kind": SOURCE_KIND,
                "source_file": batch.source_file,
                "file_sha256": batch.sha256,
                "file_bytes": print_.file_bytes,
                "layout": chosen.name,
                "rows_in_file": rows_in_file,
                "started_at": started_at,
            }
            if bad > limit:
                message = _rejection(
                    source, bad, rows_in_file, settings.max_bad_share, reasons, examples
                )
                sink.rollback()
                sink.begin(batch.batch_id)
                sink.insert_audit(
                    {
                        **audit,
                        "status": "rejected",
                        "rows_loaded": 0,
                        "rows_quarantined": bad,
                        "message": message,
                        "finished_at": _now(),
                    }
                )
                sink.commit()
                raise ContrailError(message)

            status = "replaced" if replacing else "loaded"
            summary = ", ".join(f"{r} {c:,}" for r, c in sorted(reasons.items()))
            sink.insert_audit(
                {
                    **audit,
                    "status": status,
                    "rows_loaded": loaded,
                    "rows_quarantined": bad,
                    "message": f"{loaded:,} loaded, {bad:,} quarantined"
                    + (f" ({summary})" if summary else ""),
                    "finished_at": _now(),
                }
            )
            sink.commit()
            return result(status, loaded, bad, reasons)
        except BaseException:
            sink.rollback()
            raise
        finally:
            sink.close()
