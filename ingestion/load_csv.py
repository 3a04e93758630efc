"""Land one CSV export in the raw tables: validated, enriched, audited, all or nothing.

A load reads the file twice: once to fingerprint it (sha256 and line count; a file already
loaded stops here), then in blocks of up to about ``settings.chunk_rows`` lines that are
parsed, validated, enriched and inserted inside ONE transaction together with the quarantine
rows and the audit row. A crash part-way therefore leaves nothing of the file behind.

The two passes overlap on two cores: a forked worker process parses, validates and enriches
the blocks (see "preparation in a worker process" below) while this process fingerprints the
file and then inserts each block the worker hands over. Only this process talks to the
warehouse.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import pickle
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.config import TARGETS, Settings
from ingestion.enrich import enrich
from ingestion.errors import ContrailError
from ingestion.layouts import PUBLIC_LAYOUTS, Layout, detect_layout, load_mapping, resolve_layout
from ingestion.reader import BlockReader, check_file, fingerprint, parse_header
from ingestion.schema import (
    ENRICHMENT_COLUMNS,
    LOAD_AUDIT,
    QUARANTINE,
    QUARANTINE_COLUMNS,
    SURVEY_COLUMNS,
    SURVEY_RESPONSES,
    SURVEY_RESPONSES_COLUMNS,
)
from ingestion.sinks import DuckDBWriter, PostgresWriter
from ingestion.validate import ARROW_TYPES, BadRow, BlockParser, ParsedBlock

SOURCE_KIND = "csv"
# Bad-row examples a rejection message shows.
EXAMPLES = 5
# First guess of bytes per line, before the first block tells.
GUESS_LINE_BYTES = 128
# The first block is this share of ``chunk_rows``, and each next one twice the size up to
# ``chunk_rows``: the insert starts early and the worker stays ahead of it.
FIRST_BLOCK_SHARE = 16


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


class _CsvSink:
    """What both warehouses do the same way for a CSV batch (keyed by the file's sha256)."""

    # Mixed in before a writer of ingestion.sinks, which provides PARAM, run() and insert().

    def loaded_before(self, sha256: str) -> bool:
        rows = self.run(
            f"select count(*) from {LOAD_AUDIT.qualified} "
            f"where file_sha256 = {self.PARAM} and status in ('loaded', 'replaced')",
            [sha256],
        )
        return bool(rows[0][0])

    def delete_batch(self, sha256: str) -> None:
        for table in (SURVEY_RESPONSES, QUARANTINE, LOAD_AUDIT):
            self.run(f"delete from {table.qualified} where file_sha256 = {self.PARAM}", [sha256])

    def insert_quarantine(self, batch: _Batch, rows: list[BadRow]) -> None:
        self.insert(QUARANTINE.qualified, _quarantine_table(batch, rows))


class _DuckDBSink(_CsvSink, DuckDBWriter):
    def start(self, batch_id: str) -> None:
        self.begin()

    def insert_rows(self, batch: _Batch, body: pa.Table) -> None:
        # Load metadata as bound parameters: cheaper than constant Arrow columns.
        columns = ", ".join(_ROW_NAMES)
        selected = ", ".join(["?", "?", "source_line", "?", "?", *_BODY_NAMES[1:]])
        contrail_rows = body  # noqa: F841 (read by DuckDB by name, from this frame)
        self.conn.execute(
            f"insert into {SURVEY_RESPONSES.qualified} ({columns}) "
            f"select {selected} from contrail_rows",
            [batch.batch_id, batch.source_file, batch.sha256, batch.loaded_at],
        ).fetchall()


class _PostgresSink(_CsvSink, PostgresWriter):
    def start(self, batch_id: str) -> None:
        # psycopg2 opens the transaction; a lock per batch keeps two loads of one file apart.
        self.run("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [batch_id])

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
        self.insert(SURVEY_RESPONSES.qualified, pa.table(arrays, names=_ROW_NAMES))


def _open_sink(target: str, settings: Settings) -> _DuckDBSink | _PostgresSink:
    if target == "duckdb":
        return _DuckDBSink(settings)
    return _PostgresSink(settings)


# --- preparation in a worker process -------------------------------------------------------
#
# Parsing, validation and enrichment (numpy/Arrow, CPU-bound) run in a forked worker process,
# so that they use the second core while this process inserts the previous block: a thread
# would share one core with the insert, since both hold the GIL for much of their work. Each
# enriched block travels as an Arrow IPC stream in an anonymous memory file (memfd) whose
# descriptor is passed over the pipe, so the insert reads it in place without copying. The
# worker owns no warehouse connection: whatever happens to it, the transaction stays here.

# Blocks the worker may have handed over and this process not yet consumed.
WINDOW = 2
# Seconds to wait for the worker to stop before killing it.
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class _Prepared:
    """One block's outcome as the load needs it; its enriched rows travel separately."""

    n_lines: int
    bad_count: int
    bad_reasons: dict[str, int]
    bad_rows: list[BadRow]
    progress: int  # file bytes consumed since the previous block
    body_bytes: int  # size of the IPC stream of the block's rows; 0 when there are none


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

    def add(self, parsed: ParsedBlock | _Prepared) -> None:
        self.lines += parsed.n_lines
        self.bad += parsed.bad_count
        for reason, count in parsed.bad_reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.examples.extend(parsed.bad_rows[: max(0, EXAMPLES - len(self.examples))])


def _body(parsed: ParsedBlock, seed: int, file_key: str) -> pa.Table:
    """The block's good rows, enriched, as ``_BODY_NAMES`` columns (no load metadata)."""
    survey = parsed.survey
    assert survey is not None
    enriched = enrich(survey, seed=seed, file_key=file_key, first_row=parsed.first_line - 2)
    if parsed.good is not None:
        mask = pa.array(parsed.good)
        survey, enriched = survey.filter(mask), enriched.filter(mask)
    return pa.Table.from_arrays(
        [pa.array(parsed.good_lines), *enriched.columns, *survey.columns], names=_BODY_NAMES
    )


_EMPTY_SURVEY = pa.schema(
    [(name, ARROW_TYPES[sql_type]) for name, sql_type in SURVEY_COLUMNS]
).empty_table()


def _block_bytes(rows: int, line_bytes: float) -> int:
    """Bytes to read for about ``rows`` lines of ``line_bytes`` each."""
    return max(64 << 10, int(rows * line_bytes))


def _write_shared(table: pa.Table) -> tuple[int, int]:
    """Write ``table`` as an Arrow IPC stream into a new memfd: (descriptor, size)."""
    counter = pa.MockOutputStream()
    with pa.ipc.new_stream(counter, table.schema) as writer:
        writer.write_table(table)
    size = counter.size()
    fd = os.memfd_create("contrail-block", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        memory = mmap.mmap(fd, size)
        stream = pa.FixedSizeBufferWriter(pa.py_buffer(memory))
        with pa.ipc.new_stream(stream, table.schema) as writer:
            writer.write_table(table)
        stream.close()
        del writer, stream  # release the buffer export, so that the map can close
        memory.close()
    except BaseException:
        os.close(fd)
        raise
    return fd, size


def _read_shared(fd: int, size: int) -> pa.Table:
    """The table in a memfd, mapped read-only and zero-copy; unmapped when the table dies."""
    try:
        memory = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return pa.ipc.open_stream(pa.py_buffer(memory)).read_all()


def _worker(
    conn: Connection,
    loader_end: Connection,
    path: Path,
    layout: Layout,
    chunk_rows: int,
    seed: int,
) -> None:
    """The worker process: parse, validate and enrich every block, and hand each over.

    It parses the first block while the loader fingerprints the file, then waits for
    ``("start", sha256, limit)``. After ``WINDOW`` blocks it waits for one credit per block the
    loader has consumed. It exits when the loader closes the pipe, dies, or says ``("stop",)``.
    """
    # The fork copied the loader's end of the pipe: closed here, so that the loader's death
    # (even by SIGKILL) closes the pipe and the worker's next receive ends it.
    loader_end.close()
    try:
        pa.set_cpu_count(1)
        consumed = 0

        def count(delta: int) -> None:
            nonlocal consumed
            consumed += delta

        # Load the enrichment tables while the loader fingerprints the file.
        enrich(_EMPTY_SURVEY, seed=seed, file_key="")
        rows = max(1, chunk_rows // FIRST_BLOCK_SHARE)
        with BlockReader(
            path, block_bytes=_block_bytes(rows, GUESS_LINE_BYTES), progress=count
        ) as blocks:
            _, header_bytes = parse_header(blocks.header_bytes, str(path))
            parser = BlockParser(layout, header_bytes)
            tally: _Tally | None = None
            file_key = ""
            credits = WINDOW
            for buf, first_line in blocks:
                keep_bad = EXAMPLES if tally is not None and tally.tripped else None
                parsed = parser.parse(buf, first_line, keep_bad=keep_bad)
                rows = min(chunk_rows, 2 * rows)
                blocks.block_bytes = _block_bytes(rows, len(buf) / max(parsed.n_lines, 1))
                if tally is None:
                    message = conn.recv()
                    if message[0] != "start":
                        return
                    file_key, tally = message[1], _Tally(message[2])
                tally.add(parsed)
                body = None
                if not tally.tripped and parsed.survey is not None:
                    body = _body(parsed, seed, file_key)
                shared = _write_shared(body) if body is not None else None
                del body
                if credits == 0:
                    if conn.recv()[0] != "next":
                        return
                    credits = 1
                credits -= 1
                conn.send(
                    _Prepared(
                        parsed.n_lines,
                        parsed.bad_count,
                        parsed.bad_reasons,
                        parsed.bad_rows,
                        consumed,
                        shared[1] if shared else 0,
                    )
                )
                consumed = 0
                if shared is not None:
                    send_handle(conn, shared[0], os.getppid())
                    os.close(shared[0])
            conn.send(("done", consumed))
    except (BrokenPipeError, EOFError, ConnectionResetError):
        return  # the loader is gone or stopped us
    except BaseException as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", _portable(exc)))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ContrailError carrying its text and traceback."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        trace = "".join(traceback.format_exception(exc))
        return ContrailError(f"preparing blocks failed: {exc!r}\n{trace}")


class _Preparation:
    """The loader's side of the worker: start it, feed it the fingerprint, receive blocks."""

    def __init__(self, path: Path, layout: Layout, chunk_rows: int, seed: int) -> None:
        context = multiprocessing.get_context("fork")  # no re-import: the worker starts at once
        self._conn, child = context.Pipe(duplex=True)
        self._process = context.Process(
            target=_worker,
            args=(child, self._conn, path, layout, chunk_rows, seed),
            name="contrail-load-prepare",
            daemon=True,
        )
        self._process.start()
        child.close()
        self._finished = False

    def start(self, sha256: str, limit: float) -> None:
        self._conn.send(("start", sha256, limit))

    def blocks(
        self, progress: Callable[[int], None] | None
    ) -> Iterator[tuple[_Prepared, pa.Table | None]]:
        """Each block's outcome and its enriched rows (None when none landed)."""
        while True:
            try:
                message = self._conn.recv()
            except EOFError:
                raise ContrailError(
                    f"the worker process preparing blocks died (exit code "
                    f"{self._process.exitcode}); nothing was loaded, retry"
                ) from None
            if isinstance(message, tuple):
                kind, value = message
                if kind == "error":
                    raise value
                if progress is not None and value:
                    progress(value)
                self._finished = True
                return
            body = None
            if message.body_bytes:
                body = _read_shared(recv_handle(self._conn), message.body_bytes)
            if progress is not None and message.progress:
                progress(message.progress)
            yield message, body
            del body
            # A worker that has sent its last block may be gone already; if it died instead,
            # the next receive says so.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._conn.send(("next",))

    def close(self) -> None:
        """Stop the worker (it may be mid-file when the load fails) and reap it."""
        if not self._finished:
            with contextlib.suppress(OSError):
                self._conn.send(("stop",))
        self._conn.close()
        self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def __enter__(self) -> _Preparation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the load ---------------------------------------------------------------------------------


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
    check_file(path)
    with BlockReader(path) as head:
        header, _ = parse_header(head.header_bytes, source)
    chosen = choose_layout(header, layout, mapping, source)

    with _Preparation(path, chosen, settings.chunk_rows, seed) as preparation:
        # The worker loads its enrichment tables and parses the first block meanwhile.
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

        if rows_in_file == 0:
            raise ContrailError(f"{source}: the file has a header but no data rows")
        limit = settings.max_bad_share * rows_in_file

        sink = _open_sink(target, settings)
        try:
            sink.start(batch.batch_id)
            replacing = sink.loaded_before(batch.sha256)
            if replacing and not force:
                sink.rollback()
                return result("skipped_duplicate", 0, 0, {})
            if force:
                sink.delete_batch(batch.sha256)

            loaded = 0
            tally = _Tally(limit)
            preparation.start(batch.sha256, limit)
            for prepared, body in preparation.blocks(progress):
                tally.add(prepared)
                if tally.tripped:
                    continue  # the file will be rejected: land nothing more
                if prepared.bad_rows:
                    sink.insert_quarantine(batch, prepared.bad_rows)
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
                sink.start(batch.batch_id)
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
