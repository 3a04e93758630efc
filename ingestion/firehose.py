"""Buffer event records and deliver them as objects laid out like Kinesis Data Firehose's.

Records (one JSON document each, as bytes) are buffered and delivered as one object when the
buffer reaches ``buffer_bytes`` or when its oldest record is ``buffer_interval_s`` old,
whichever comes first; an interval of 0 delivers every ``add`` at once. Objects are named
``<prefix>YYYY/MM/dd/HH/<stream>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid>[.gz]`` from the UTC
arrival time of their oldest record, hold the records concatenated with no delimiter
(Firehose's default) or one per line, and may be gzipped. No object is larger than
``buffer_bytes`` (uncompressed) unless a single record is.

Durability: ``add`` appends its records to a journal segment and fsyncs it before it returns,
so an accepted record survives SIGKILL. Each buffer generation (the records of one object) has
its own segment, deleted once its object is written. A new buffer re-buffers whatever the
journal still holds. Delivery is at least once: a crash after an object is written but before
its segment is deleted delivers those records again, and the loader deduplicates on event_id.

Journal frame (little-endian): ``b"CJR1"``, payload length (u32), crc32 of the payload (u32);
payload: arrival time (f64, epoch seconds), record count n (u32), n record lengths (u32), the
records. A frame cut short by a crash, or failing its checksum, ends the segment's replay.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import itertools
import logging
import os
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ingestion.config import Settings
from ingestion.errors import ContrailError

log = logging.getLogger(__name__)

FRAMINGS = ("concatenated", "ndjson")
COMPRESSIONS = ("none", "gzip")
# zlib level for gzip objects: 6 compresses 7.7 MB of envelopes in about 0.13 s here,
# 9 takes four times as long for 5% less.
GZIP_LEVEL = 6

_FRAME_MAGIC = b"CJR1"
_FRAME_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32(payload)
_PAYLOAD_HEADER = struct.Struct("<dI")  # arrival (epoch seconds), record count
_SEGMENT_RE = re.compile(r"^segment-(\d{12})\.journal$")
_LOCK_NAME = "journal.lock"
_TEMP_SUFFIX = ".tmp"
_STREAM_NAME_RE = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class DeliveryConfig:
    """How records are buffered and how delivery objects are named and framed."""

    stream_name: str = "contrail-surveys"
    prefix: str = ""  # e.g. "surveys/"; keys are <prefix>YYYY/MM/dd/HH/...
    buffer_bytes: int = 5 * 1024 * 1024  # flush when the buffer reaches this size
    buffer_interval_s: float = 60.0  # ... or when the oldest record is this old; 0 = no buffering
    framing: Literal["concatenated", "ndjson"] = "concatenated"  # Firehose default: no delimiter
    compression: Literal["none", "gzip"] = "none"
    version: int = 1

    def __post_init__(self) -> None:
        problems = []
        if not _STREAM_NAME_RE.match(self.stream_name):
            problems.append(
                f"stream_name {self.stream_name!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        if self.prefix.startswith("/") or ".." in self.prefix.split("/"):
            problems.append(f"prefix {self.prefix!r} must be relative and must not contain '..'")
        if self.buffer_bytes < 1:
            problems.append(f"buffer_bytes {self.buffer_bytes} must be at least 1")
        if self.buffer_interval_s < 0:
            problems.append(f"buffer_interval_s {self.buffer_interval_s} must be 0 or more")
        if self.framing not in FRAMINGS:
            problems.append(f"framing {self.framing!r} must be one of {', '.join(FRAMINGS)}")
        if self.compression not in COMPRESSIONS:
            problems.append(
                f"compression {self.compression!r} must be one of {', '.join(COMPRESSIONS)}"
            )
        if self.version < 1:
            problems.append(f"version {self.version} must be 1 or more")
        if problems:
            raise ContrailError("delivery config: " + "; ".join(problems))

    @property
    def delimiter(self) -> bytes:
        return b"\n" if self.framing == "ndjson" else b""

    def object_key(self, oldest_arrival: float, object_id: str) -> str:
        """The key of an object whose oldest record arrived at ``oldest_arrival`` (epoch s)."""
        at = datetime.fromtimestamp(oldest_arrival, UTC)
        suffix = ".gz" if self.compression == "gzip" else ""
        return (
            f"{self.prefix}{at:%Y/%m/%d/%H}/"
            f"{self.stream_name}-{self.version}-{at:%Y-%m-%d-%H-%M-%S}-{object_id}{suffix}"
        )

    def encode(self, records: list[bytes]) -> bytes:
        """The object body for ``records``: framed, then compressed."""
        body = b"\n".join(records) + b"\n" if self.framing == "ndjson" else b"".join(records)
        if self.compression == "gzip":
            return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return body


class Destination(Protocol):
    """Where delivery objects go: a local directory now, an S3 bucket later."""

    def put_object(self, key: str, body: bytes) -> None:
        """Store ``body`` under ``key`` atomically: readers never see part of it."""
        ...

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every stored key starting with ``prefix``, sorted."""
        ...

    def get_object(self, key: str) -> bytes: ...


@dataclass(frozen=True)
class LocalDirectory:
    """A ``Destination`` in a local directory; keys are relative paths with '/' separators."""

    root: Path

    @classmethod
    def for_settings(cls, settings: Settings) -> LocalDirectory:
        """The default landing directory, ``<data_dir>/landing/firehose``."""
        return cls(settings.data_dir / "landing" / "firehose")

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if (
            not key
            or key.startswith("/")
            or "\\" in key
            or any(part in ("", ".", "..") or part.startswith(".") for part in parts)
        ):
            raise ContrailError(
                f"{self.root}: object key {key!r} is not a relative path of plain names"
            )
        return self.root.joinpath(*parts)

    def put_object(self, key: str, body: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A dot-named temp file in the same directory: list_keys skips it, and os.replace is
        # atomic within one file system.
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, body)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise
        _fsync_dir(path.parent)

    def list_keys(self, prefix: str = "") -> list[str]:
        # Walk only the directory the prefix names, not the whole tree.
        base_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base_dir if base_dir else self.root
        if not start.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            head = "" if rel == "." else rel + "/"
            keys.extend(
                head + name
                for name in filenames
                if not name.startswith(".") and (head + name).startswith(prefix)
            )
        return sorted(keys)

    def get_object(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ContrailError(f"{self.root}: no delivery object {key!r}") from None


@dataclass(frozen=True)
class RecoveryReport:
    """What a new buffer found in its journal."""

    segments: int = 0
    records: int = 0
    torn_bytes: int = 0  # bytes of incomplete or corrupt frames dropped


@dataclass
class _Generation:
    """The records of one future object, and the journal segment that holds them."""

    segment: Path | None
    fd: int | None = None
    records: list[bytes] = field(default_factory=list)
    nbytes: int = 0  # framed, uncompressed size
    oldest_arrival: float = 0.0


class DeliveryBuffer:
    """Buffers records, journals them, and delivers them Firehose-style to a destination.

    Thread-safe: ``add`` may run in many threads while another calls ``flush_due``. Deliveries
    run one at a time; ``add`` only waits for the journal write, unless its records fill the
    buffer, in which case it delivers (or waits for the delivery in progress) before returning.
    """

    def __init__(
        self,
        destination: Destination,
        config: DeliveryConfig,
        *,
        journal_dir: Path | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.destination = destination
        self.config = config
        self.journal_dir = journal_dir
        self._clock = clock
        # Lock order: _delivering, then _syncing, then _state.
        self._state = threading.Lock()  # buffer contents and journal appends
        self._syncing = threading.Lock()  # one fsync round at a time; no fd closes during it
        self._delivering = threading.Lock()  # one delivery at a time
        # Group commit: journal writes are numbered; an fsync round covers every write made
        # before it started, so concurrent adds share one fsync.
        self._written = 0
        self._synced = 0
        self._unsynced: set[int] = set()  # descriptors written since the last fsync round
        self._sealed: list[_Generation] = []  # complete, waiting for delivery
        self._open: _Generation | None = None
        self._next_segment = 0
        self._lock_fd: int | None = None
        self._closed = False
        self.recovery = RecoveryReport()
        if journal_dir is not None:
            self._lock_journal(journal_dir)
            self.recovery = self._recover(journal_dir)

    # -- public -----------------------------------------------------------------------------

    def add(self, records: list[bytes]) -> list[str]:
        """Buffer ``records`` (one JSON document each); they are durable when this returns.

        Returns the keys of objects delivered because the buffer reached its size (or at once
        when the interval is 0). A failed delivery does not fail the add: the records stay
        buffered and journaled, and the next flush retries and raises.
        """
        if not records:
            return []
        self._check_records(records)
        delim = len(self.config.delimiter)
        sizes = np.fromiter(map(len, records), dtype=np.int64, count=len(records)) + delim
        ends = np.cumsum(sizes)
        capacity = self.config.buffer_bytes
        with self._state:
            self._ensure_open()
            sealed_before = len(self._sealed)
            now = self._clock()
            start = 0
            while start < len(records):
                gen = self._current()
                done = int(ends[start - 1]) if start else 0
                room = capacity - gen.nbytes
                stop = int(np.searchsorted(ends, done + room, side="right"))
                if stop == start:
                    if gen.records:  # the next record does not fit: this object is complete
                        self._seal()
                        continue
                    stop = start + 1  # a single record larger than the buffer
                chunk = records[start:stop]
                self._journal(gen, now, chunk, sizes[start:stop])
                if not gen.records:
                    gen.oldest_arrival = now
                gen.records.extend(chunk)
                gen.nbytes += int(ends[stop - 1]) - done
                if gen.nbytes >= capacity:
                    self._seal()
                start = stop
            ticket = self._written
            if self.config.buffer_interval_s == 0:
                self._seal()
            # Deliver here only when these records completed an object; anything sealed
            # earlier (recovered, or a failed delivery) waits for flush_due/flush.
            pending = len(self._sealed) > sealed_before
        self._sync(ticket)
        if not pending:
            return []
        try:
            return self._deliver_sealed()
        except Exception:
            log.exception("delivery failed; the records stay buffered and journaled")
            return []

    def flush_due(self) -> list[str]:
        """Deliver the buffer if its oldest record is ``buffer_interval_s`` old (or older)."""
        with self._state:
            gen = self._open
            if gen is not None and gen.records:
                age = self._clock() - gen.oldest_arrival
                if age >= self.config.buffer_interval_s:
                    self._seal()
            if not self._sealed:
                return []
        return self._deliver_sealed()

    def flush(self) -> list[str]:
        """Deliver everything buffered now; returns the keys written."""
        with self._state:
            self._seal()
            if not self._sealed:
                return []
        return self._deliver_sealed()

    @property
    def buffered_records(self) -> int:
        with self._state:
            return sum(len(gen.records) for gen in self._generations())

    @property
    def buffered_bytes(self) -> int:
        with self._state:
            return sum(gen.nbytes for gen in self._generations())

    def close(self) -> None:
        """Release the journal without delivering; buffered records stay in the journal."""
        with self._delivering, self._syncing, self._state:
            self._closed = True
            self._unsynced.clear()
            for gen in self._generations():
                if gen.fd is not None:
                    os.close(gen.fd)
                    gen.fd = None
            self._sealed = []
            self._open = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # closing the descriptor releases the flock
                self._lock_fd = None

    def __enter__(self) -> DeliveryBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- buffering (callers hold self._state) ------------------------------------------------

    def _generations(self) -> list[_Generation]:
        return [*self._sealed, *([self._open] if self._open is not None else [])]

    def _ensure_open(self) -> None:
        if self._closed:
            raise ContrailError(
                f"delivery buffer {self.config.stream_name}: add() after close(); "
                "open a new buffer on the same journal directory"
            )

    def _current(self) -> _Generation:
        if self._open is None:
            segment = None
            if self.journal_dir is not None:
                segment = self.journal_dir / f"segment-{self._next_segment:012d}.journal"
                self._next_segment += 1
            self._open = _Generation(segment=segment)
        return self._open

    def _seal(self) -> None:
        if self._open is not None and self._open.records:
            self._sealed.append(self._open)
            self._open = None

    def _journal(
        self,
        gen: _Generation,
        now: float,
        chunk: list[bytes],
        sizes: np.ndarray,
    ) -> None:
        if gen.segment is None:
            return
        lengths = (sizes - len(self.config.delimiter)).astype("<u4")
        payload = b"".join([_PAYLOAD_HEADER.pack(now, len(chunk)), lengths.tobytes(), *chunk])
        frame = _FRAME_HEADER.pack(_FRAME_MAGIC, len(payload), zlib.crc32(payload)) + payload
        try:
            if gen.fd is None:
                gen.fd = os.open(gen.segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                _fsync_dir(gen.segment.parent)  # the new segment's name survives a power cut
            _write_all(gen.fd, frame)
        except OSError as exc:
            raise ContrailError(
                f"{gen.segment}: could not journal {len(chunk)} records: {exc.strerror}"
            ) from exc
        self._written += 1
        self._unsynced.add(gen.fd)

    def _sync(self, ticket: int) -> None:
        """Return once journal write number ``ticket`` is on disk (fsync, shared by threads)."""
        if self.journal_dir is None:
            return
        with self._syncing:
            if self._synced >= ticket:
                return  # an fsync round that started after our write covered it
            with self._state:
                target = self._written
                fds = list(self._unsynced)
                self._unsynced.clear()
            for fd in fds:
                try:
                    os.fsync(fd)
                except OSError as exc:
                    with self._state:
                        self._unsynced.update(fds)
                    raise ContrailError(
                        f"{self.journal_dir}: could not fsync the delivery journal: {exc}"
                    ) from exc
            self._synced = target

    def _check_records(self, records: list[bytes]) -> None:
        for i, record in enumerate(records):
            if not isinstance(record, bytes) or not record:
                raise ContrailError(
                    f"delivery buffer {self.config.stream_name}: record {i} must be non-empty "
                    f"bytes (one JSON document), got {type(record).__name__} of length "
                    f"{len(record) if hasattr(record, '__len__') else '?'}"
                )
            if self.config.framing == "ndjson" and b"\n" in record:
                raise ContrailError(
                    f"delivery buffer {self.config.stream_name}: record {i} contains a newline, "
                    "which would split it in newline-delimited framing"
                )

    # -- delivery ----------------------------------------------------------------------------

    def _deliver_sealed(self) -> list[str]:
        """Deliver every sealed generation, oldest first, including ones others seal meanwhile."""
        keys: list[str] = []
        with self._delivering:
            while True:
                with self._state:
                    if not self._sealed:
                        return keys
                    gen = self._sealed[0]
                keys.extend(self._deliver(gen))  # raises with the generation still sealed
                with self._syncing, self._state:
                    self._sealed.remove(gen)
                    if gen.fd is not None:
                        # Unsynced writes to it need no fsync now: the object holds them.
                        self._unsynced.discard(gen.fd)
                        os.close(gen.fd)
                        gen.fd = None
                if gen.segment is not None:
                    with contextlib.suppress(FileNotFoundError):
                        gen.segment.unlink()

    def _deliver(self, gen: _Generation) -> list[str]:
        """Write one generation as one object (more only if it exceeds ``buffer_bytes``)."""
        keys = []
        for chunk in self._split(gen.records):
            key = self.config.object_key(gen.oldest_arrival, str(uuid.uuid4()))
            self.destination.put_object(key, self.config.encode(chunk))
            keys.append(key)
        return keys

    def _split(self, records: list[bytes]) -> list[list[bytes]]:
        """Records cut into runs of at most ``buffer_bytes`` framed bytes (a lone record may
        exceed it). A generation only needs cutting when it was journaled under a smaller
        buffer size than the current one."""
        delim = len(self.config.delimiter)
        ends = np.cumsum(np.fromiter(map(len, records), dtype=np.int64, count=len(records)) + delim)
        chunks = []
        start = 0
        while start < len(records):
            done = int(ends[start - 1]) if start else 0
            stop = int(np.searchsorted(ends, done + self.config.buffer_bytes, side="right"))
            stop = max(stop, start + 1)
            chunks.append(records[start:stop])
            start = stop
        return chunks

    # -- journal ----------------------------------------------------------------------------

    def _lock_journal(self, journal_dir: Path) -> None:
        journal_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(journal_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ContrailError(
                    f"{journal_dir}: the delivery journal is in use by another buffer; "
                    "give each buffer its own journal directory"
                ) from None
            raise
        self._lock_fd = fd

    def _recover(self, journal_dir: Path) -> RecoveryReport:
        """Re-buffer the records of every segment left by an earlier buffer, oldest first."""
        segments = sorted(
            (int(m.group(1)), journal_dir / name)
            for name in os.listdir(journal_dir)
            if (m := _SEGMENT_RE.match(name))
        )
        self._next_segment = segments[-1][0] + 1 if segments else 0
        records_total = torn_total = 0
        for _, path in segments:
            data = path.read_bytes()
            gen, torn = _read_segment(path, data)
            torn_total += torn
            if torn:
                log.warning("%s: dropped a torn journal tail of %d bytes", path, torn)
            if not gen.records:
                path.unlink()
                continue
            delim = len(self.config.delimiter)
            gen.nbytes = sum(map(len, gen.records)) + delim * len(gen.records)
            records_total += len(gen.records)
            self._sealed.append(gen)
        return RecoveryReport(segments=len(segments), records=records_total, torn_bytes=torn_total)


def _read_segment(path: Path, data: bytes) -> tuple[_Generation, int]:
    """The records of the complete, intact frames of one segment, and the bytes dropped."""
    gen = _Generation(segment=path)
    pos = 0
    while pos + _FRAME_HEADER.size <= len(data):
        magic, length, crc = _FRAME_HEADER.unpack_from(data, pos)
        start = pos + _FRAME_HEADER.size
        payload = data[start : start + length]
        if magic != _FRAME_MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            break
        if length < _PAYLOAD_HEADER.size:
            break
        arrival, count = _PAYLOAD_HEADER.unpack_from(payload, 0)
        body = _PAYLOAD_HEADER.size + 4 * count
        if body > length:
            break
        lengths = np.frombuffer(payload, dtype="<u4", count=count, offset=_PAYLOAD_HEADER.size)
        offsets = np.concatenate(([body], body + np.cumsum(lengths, dtype=np.int64)))
        if int(offsets[-1]) != length:
            break
        if not gen.records:
            gen.oldest_arrival = arrival
        bounds = offsets.tolist()
        gen.records.extend(payload[a:b] for a, b in itertools.pairwise(bounds))
        pos = start + length
    return gen, len(data) - pos


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
