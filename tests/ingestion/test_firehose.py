"""The delivery buffer: Firehose buffering rules, key layout, framing, atomicity, durability."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingestion.config import REPO_ROOT, Settings
from ingestion.errors import ContrailError
from ingestion.events import envelope
from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory

# The documented Firehose S3 object name: <prefix>YYYY/MM/dd/HH/ then
# <stream name>-<stream version>-<year>-<month>-<day>-<hour>-<minute>-<second>-<uuid><extension>,
# times in UTC from the oldest record in the object.
FIREHOSE_KEY = re.compile(
    r"^(?P<prefix>.*?)(?P<Y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<H>\d{2})/"
    r"(?P<stream>[A-Za-z0-9_.-]+)-(?P<version>\d+)-"
    r"(?P<Y2>\d{4})-(?P<m2>\d{2})-(?P<d2>\d{2})-(?P<H2>\d{2})-(?P<M2>\d{2})-(?P<S2>\d{2})-"
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?P<ext>\.gz)?$"
)

T0 = datetime(2026, 3, 1, 10, 15, 0, tzinfo=UTC).timestamp()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _record(i: int, pad: int = 0) -> bytes:
    return json.dumps({"event_id": f"e{i:06d}", "pad": "x" * pad}).encode()


def _decode(body: bytes, key: str) -> list[dict]:
    """Every JSON document in an object, whatever its framing and compression."""
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    text = body.decode()
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    return docs


def _delivered(dest: LocalDirectory) -> list[str]:
    """Event ids of every record in every object, in key order."""
    return [
        doc["event_id"] for key in dest.list_keys() for doc in _decode(dest.get_object(key), key)
    ]


def _buffer(tmp_path: Path, clock: Clock | None = None, **config) -> DeliveryBuffer:
    return DeliveryBuffer(
        LocalDirectory(tmp_path / "landing"),
        DeliveryConfig(**config),
        journal_dir=tmp_path / "journal",
        clock=clock or Clock(),
    )


# -- buffering rules ---------------------------------------------------------------------


def test_size_trigger_delivers_when_the_next_record_would_overflow(tmp_path: Path) -> None:
    records = [_record(i) for i in range(4)]
    size = len(records[0])
    buf = _buffer(tmp_path, buffer_bytes=3 * size + size // 2, buffer_interval_s=3600)

    assert buf.add(records[:3]) == []
    assert buf.buffered_records == 3
    assert buf.buffered_bytes == 3 * size

    keys = buf.add(records[3:])

    assert len(keys) == 1
    assert buf.destination.get_object(keys[0]) == b"".join(records[:3])
    assert buf.buffered_records == 1


def test_size_trigger_delivers_when_the_buffer_is_exactly_full(tmp_path: Path) -> None:
    records = [_record(i) for i in range(4)]
    buf = _buffer(tmp_path, buffer_bytes=sum(map(len, records)), buffer_interval_s=3600)

    keys = buf.add(records)

    assert len(keys) == 1
    assert buf.destination.get_object(keys[0]) == b"".join(records)
    assert buf.buffered_records == 0


def test_no_object_exceeds_the_buffer_size_unless_one_record_does(tmp_path: Path) -> None:
    records = [_record(i, pad=(i * 7) % 40) for i in range(200)]
    big = _record(999, pad=500)
    limit = 300
    buf = _buffer(tmp_path, buffer_bytes=limit, buffer_interval_s=3600, framing="ndjson")

    buf.add(records[:120])
    buf.add([big])
    buf.add(records[120:])
    buf.flush()

    dest = buf.destination
    sizes = {key: len(dest.get_object(key)) for key in dest.list_keys()}
    big_keys = [k for k in sizes if b'"e000999"' in dest.get_object(k)]
    assert len(big_keys) == 1 and sizes[big_keys[0]] == len(big) + 1
    assert all(size <= limit for key, size in sizes.items() if key not in big_keys)
    assert sorted(_delivered(dest)) == sorted([f"e{i:06d}" for i in range(200)] + ["e000999"])


def test_interval_trigger_counts_from_the_oldest_record(tmp_path: Path) -> None:
    clock = Clock()
    buf = _buffer(tmp_path, clock, buffer_interval_s=60)

    buf.add([_record(1)])
    clock.now += 30
    buf.add([_record(2)])
    clock.now += 29.9
    assert buf.flush_due() == []
    assert buf.buffered_records == 2

    clock.now += 0.1  # 60 s after the first record
    keys = buf.flush_due()

    assert len(keys) == 1
    assert _delivered(buf.destination) == ["e000001", "e000002"]
    assert buf.buffered_records == 0
    assert buf.flush_due() == []


def test_interval_zero_delivers_every_add_at_once(tmp_path: Path) -> None:
    buf = _buffer(tmp_path, buffer_interval_s=0)

    first = buf.add([_record(1), _record(2)])
    second = buf.add([_record(3)])

    assert len(first) == 1 and len(second) == 1
    dest = buf.destination
    assert _decode(dest.get_object(first[0]), first[0]) == [json.loads(_record(i)) for i in (1, 2)]
    assert _decode(dest.get_object(second[0]), second[0]) == [json.loads(_record(3))]
    assert buf.buffered_records == 0


def test_flush_delivers_everything_and_an_empty_flush_writes_nothing(tmp_path: Path) -> None:
    buf = _buffer(tmp_path)
    assert buf.flush() == []

    buf.add([_record(i) for i in range(5)])
    keys = buf.flush()

    assert len(keys) == 1
    assert _delivered(buf.destination) == [f"e{i:06d}" for i in range(5)]
    assert buf.flush() == []


# -- keys ------------------------------------------------------------------------------------


def test_key_follows_the_documented_firehose_format(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 12, 31, 23, 4, 5, tzinfo=UTC).timestamp())
    buf = _buffer(
        tmp_path, clock, prefix="surveys/", stream_name="kiosk-surveys", version=3,
        compression="gzip",
    )  # fmt: skip
    buf.add([_record(1)])

    (key,) = buf.flush()

    match = FIREHOSE_KEY.match(key)
    assert match, key
    parts = match.groupdict()
    assert parts["prefix"] == "surveys/"
    assert (parts["Y"], parts["m"], parts["d"], parts["H"]) == ("2026", "12", "31", "23")
    assert parts["stream"] == "kiosk-surveys" and parts["version"] == "3"
    assert (parts["Y2"], parts["m2"], parts["d2"], parts["H2"], parts["M2"], parts["S2"]) == (
        "2026", "12", "31", "23", "04", "05",
    )  # fmt: skip
    assert parts["ext"] == ".gz"
    assert buf.destination.list_keys() == [key]


def test_key_hour_is_the_oldest_records_arrival_across_an_hour_boundary(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 3, 1, 10, 59, 58, tzinfo=UTC).timestamp())
    buf = _buffer(tmp_path, clock)
    buf.add([_record(1)])
    clock.now += 5  # 11:00:03
    buf.add([_record(2)])

    (key,) = buf.flush()

    assert key.startswith("2026/03/01/10/contrail-surveys-1-2026-03-01-10-59-58-"), key
    assert FIREHOSE_KEY.match(key)
    assert not key.endswith(".gz")


def test_objects_of_one_stream_get_distinct_keys_within_one_second(tmp_path: Path) -> None:
    buf = _buffer(tmp_path, buffer_interval_s=0)
    keys = [key for i in range(20) for key in buf.add([_record(i)])]

    assert len(set(keys)) == 20
    assert buf.destination.list_keys() == sorted(keys)


# -- framing and compression ------------------------------------------------------------------


def test_concatenated_framing_has_no_delimiter_and_parses_back(tmp_path: Path) -> None:
    records = [json.dumps(envelope({"age": i, "gender": "Male"})).encode() for i in range(50)]
    buf = _buffer(tmp_path)
    buf.add(records)
    (key,) = buf.flush()

    body = buf.destination.get_object(key)

    assert body == b"".join(records)
    decoder, text, pos, docs = json.JSONDecoder(), body.decode(), 0, []
    while pos < len(text):
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    assert docs == [json.loads(r) for r in records]


def test_ndjson_framing_puts_one_record_per_line(tmp_path: Path) -> None:
    records = [_record(i) for i in range(10)]
    buf = _buffer(tmp_path, framing="ndjson")
    buf.add(records)
    (key,) = buf.flush()

    body = buf.destination.get_object(key)

    assert body.endswith(b"\n")
    assert [json.loads(line) for line in body.splitlines()] == [json.loads(r) for r in records]


@pytest.mark.parametrize("framing", ["concatenated", "ndjson"])
def test_gzip_objects_decompress_to_the_framed_records(tmp_path: Path, framing: str) -> None:
    records = [_record(i, pad=50) for i in range(100)]
    buf = _buffer(tmp_path, framing=framing, compression="gzip")
    buf.add(records)
    (key,) = buf.flush()

    body = buf.destination.get_object(key)

    assert key.endswith(".gz") and body[:2] == b"\x1f\x8b"
    delimiter = b"\n" if framing == "ndjson" else b""
    assert gzip.decompress(body) == b"".join(r + delimiter for r in records)


def test_ndjson_refuses_a_record_with_a_newline(tmp_path: Path) -> None:
    buf = _buffer(tmp_path, framing="ndjson")
    with pytest.raises(ContrailError, match="record 1 contains a newline"):
        buf.add([_record(0), b'{"a":\n1}'])
    assert buf.buffered_records == 0


def test_empty_or_non_bytes_records_are_refused(tmp_path: Path) -> None:
    buf = _buffer(tmp_path)
    with pytest.raises(ContrailError, match="record 0 must be non-empty bytes"):
        buf.add([b""])
    with pytest.raises(ContrailError, match="record 1 must be non-empty bytes"):
        buf.add([b"{}", "{}"])  # type: ignore[list-item]
    assert buf.buffered_records == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("buffer_bytes", 0, "buffer_bytes 0 must be at least 1"),
        ("buffer_interval_s", -1, "buffer_interval_s -1 must be 0 or more"),
        ("framing", "csv", "framing 'csv' must be one of"),
        ("compression", "zip", "compression 'zip' must be one of"),
        ("stream_name", "a/b", "stream_name 'a/b' must be"),
        ("prefix", "../up/", "prefix '../up/' must be relative"),
        ("version", 0, "version 0 must be 1 or more"),
    ],
)
def test_invalid_config_is_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(ContrailError, match=re.escape(message)):
        DeliveryConfig(**{field: value})


# -- the local destination ----------------------------------------------------------------------


def test_local_directory_lists_sorted_keys_under_a_prefix(tmp_path: Path) -> None:
    dest = LocalDirectory(tmp_path)
    for key in ["b/2026/01/01/01/x", "a/2026/01/01/00/z", "a/2026/01/01/00/y", "top"]:
        dest.put_object(key, key.encode())
    (tmp_path / "a" / "2026" / "01" / "01" / "00" / ".y.123.tmp").write_bytes(b"partial")

    assert dest.list_keys() == [
        "a/2026/01/01/00/y", "a/2026/01/01/00/z", "b/2026/01/01/01/x", "top",
    ]  # fmt: skip
    assert dest.list_keys("a/") == ["a/2026/01/01/00/y", "a/2026/01/01/00/z"]
    assert dest.list_keys("a/2026/01/01/00/z") == ["a/2026/01/01/00/z"]
    assert dest.list_keys("t") == ["top"]
    assert dest.list_keys("missing/") == []
    assert dest.get_object("a/2026/01/01/00/y") == b"a/2026/01/01/00/y"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", ".hidden", "a\\b"])
def test_local_directory_refuses_keys_outside_its_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ContrailError, match="is not a relative path"):
        LocalDirectory(tmp_path).put_object(key, b"x")


def test_local_directory_names_a_missing_object(tmp_path: Path) -> None:
    with pytest.raises(ContrailError, match="no delivery object 'a/b'"):
        LocalDirectory(tmp_path).get_object("a/b")


def test_local_directory_default_root_is_under_the_data_dir(settings: Settings) -> None:
    assert LocalDirectory.for_settings(settings).root == settings.data_dir / "landing" / "firehose"


def test_objects_are_written_atomically_and_leave_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = LocalDirectory(tmp_path / "landing")
    bodies = {f"2026/01/01/00/obj-{i:03d}": bytes([65 + i % 26]) * (256 * 1024) for i in range(16)}
    digests = {key: hashlib.sha256(body).hexdigest() for key, body in bodies.items()}
    in_flight: list[str] = []  # the key being written
    problems: list[str] = []

    def look(writing: str | None = None) -> None:
        """What a reader in another process would see at this moment."""
        for key in dest.list_keys():
            if key == writing:
                problems.append(f"{key} listed before its write finished")
            elif hashlib.sha256(dest.get_object(key)).hexdigest() != digests[key]:
                problems.append(f"{key} read back incomplete")

    real_fsync = os.fsync

    def fsync_then_look(fd: int) -> None:
        real_fsync(fd)
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            look(in_flight[-1])  # every byte of the object is written: is it visible yet?

    monkeypatch.setattr(os, "fsync", fsync_then_look)
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            look()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for key, body in bodies.items():
            in_flight.append(key)
            dest.put_object(key, body)
    finally:
        done.set()
        thread.join()

    assert problems == []
    leftovers = [p for p in (tmp_path / "landing").rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    assert dest.list_keys() == sorted(bodies)
    assert all(dest.get_object(key) == body for key, body in bodies.items())


# -- durability -----------------------------------------------------------------------------------


def test_journaled_records_are_recovered_and_delivered_exactly_once(tmp_path: Path) -> None:
    clock = Clock()
    first = _buffer(tmp_path, clock)
    first.add([_record(i) for i in range(3)])
    clock.now += 10
    first.add([_record(i) for i in range(3, 7)])
    first.close()  # gone without flushing, as after a crash
    assert LocalDirectory(tmp_path / "landing").list_keys() == []

    second = _buffer(tmp_path, clock)
    assert (second.recovery.records, second.recovery.torn_bytes) == (7, 0)
    assert second.buffered_records == 7
    keys = second.flush()

    assert len(keys) == 1
    # The key keeps the original arrival time of the oldest record.
    assert datetime.fromtimestamp(T0, UTC).strftime("%Y-%m-%d-%H-%M-%S") in keys[0]
    assert _delivered(second.destination) == [f"e{i:06d}" for i in range(7)]
    assert second.flush() == []
    second.close()

    third = _buffer(tmp_path, clock)
    assert third.recovery.records == 0
    assert third.flush() == []
    assert _delivered(third.destination) == [f"e{i:06d}" for i in range(7)]


def test_recovered_records_are_delivered_by_the_next_due_flush(tmp_path: Path) -> None:
    first = _buffer(tmp_path, buffer_interval_s=60)
    first.add([_record(1)])
    first.close()

    second = _buffer(tmp_path, buffer_interval_s=60)
    second.add([_record(2)])
    keys = second.flush_due()  # the new record is not due; the recovered one is delivered now

    assert len(keys) == 1
    assert _delivered(second.destination) == ["e000001"]
    assert second.buffered_records == 1


def test_a_torn_journal_tail_is_dropped(tmp_path: Path) -> None:
    first = _buffer(tmp_path)
    first.add([_record(1), _record(2)])
    first.add([_record(3), _record(4)])
    first.close()
    (segment,) = (tmp_path / "journal").glob("segment-*.journal")
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # the second frame lost its last bytes in a crash

    second = _buffer(tmp_path)

    frame = len(data) // 2  # both frames hold two records of the same length
    assert second.recovery.records == 2
    assert second.recovery.torn_bytes == frame - 5
    second.flush()
    assert _delivered(second.destination) == ["e000001", "e000002"]


def test_a_corrupt_journal_frame_ends_the_replay(tmp_path: Path) -> None:
    first = _buffer(tmp_path)
    first.add([_record(1)])
    first.add([_record(2)])
    first.close()
    (segment,) = (tmp_path / "journal").glob("segment-*.journal")
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # a flipped byte in the second frame's records
    segment.write_bytes(bytes(data) + b"garbage after the frame")

    second = _buffer(tmp_path)

    assert second.recovery.records == 1
    second.flush()
    assert _delivered(second.destination) == ["e000001"]
    assert list((tmp_path / "journal").glob("segment-*.journal")) == []


def test_a_failed_delivery_keeps_the_records_for_the_next_flush(tmp_path: Path) -> None:
    class Flaky(LocalDirectory):
        failures = 1

        def put_object(self, key: str, body: bytes) -> None:
            if Flaky.failures:
                Flaky.failures -= 1
                raise OSError("disk full")
            super().put_object(key, body)

    buf = DeliveryBuffer(
        Flaky(tmp_path / "landing"), DeliveryConfig(), journal_dir=tmp_path / "journal"
    )
    buf.add([_record(1), _record(2)])

    with pytest.raises(OSError, match="disk full"):
        buf.flush()
    assert buf.buffered_records == 2
    buf.add([_record(3)])
    buf.flush()

    assert sorted(_delivered(buf.destination)) == ["e000001", "e000002", "e000003"]
    assert buf.buffered_records == 0


def test_a_crash_after_writing_an_object_delivers_it_again(tmp_path: Path) -> None:
    """At least once: the object exists but its journal segment was not yet deleted."""

    class CrashAfterWrite(LocalDirectory):
        def put_object(self, key: str, body: bytes) -> None:
            super().put_object(key, body)
            raise KeyboardInterrupt  # the process dies before the journal is trimmed

    first = DeliveryBuffer(
        CrashAfterWrite(tmp_path / "landing"), DeliveryConfig(), journal_dir=tmp_path / "journal"
    )
    first.add([_record(1)])
    with pytest.raises(KeyboardInterrupt):
        first.flush()
    first.close()

    second = _buffer(tmp_path)
    second.flush()

    assert _delivered(second.destination) == ["e000001", "e000001"]


def test_one_journal_directory_serves_one_buffer_at_a_time(tmp_path: Path) -> None:
    first = _buffer(tmp_path)
    with pytest.raises(ContrailError, match="in use by another buffer"):
        _buffer(tmp_path)
    first.close()
    _buffer(tmp_path).close()


def test_a_closed_buffer_refuses_records(tmp_path: Path) -> None:
    buf = _buffer(tmp_path)
    buf.close()
    with pytest.raises(ContrailError, match="add\\(\\) after close"):
        buf.add([_record(1)])


def test_concurrent_adds_are_delivered_exactly_once(tmp_path: Path) -> None:
    clock = Clock()
    buf = _buffer(tmp_path, clock, buffer_bytes=2_000, buffer_interval_s=1)
    threads_n, adds_n, per_add = 6, 60, 3
    stop = threading.Event()

    def producer(t: int) -> None:
        for a in range(adds_n):
            base = (t * adds_n + a) * per_add
            buf.add([_record(base + k) for k in range(per_add)])

    def ticker() -> None:
        while not stop.is_set():
            clock.now += 0.5
            buf.flush_due()

    tick = threading.Thread(target=ticker)
    tick.start()
    producers = [threading.Thread(target=producer, args=(t,)) for t in range(threads_n)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()
    stop.set()
    tick.join()
    buf.flush()

    expected = sorted(f"e{i:06d}" for i in range(threads_n * adds_n * per_add))
    assert sorted(_delivered(buf.destination)) == expected
    assert buf.buffered_records == 0 and buf.buffered_bytes == 0
    assert list((tmp_path / "journal").glob("segment-*.journal")) == []
    assert len(buf.destination.list_keys()) > 5  # size and interval both delivered objects


def test_add_returns_after_an_fsync_that_concurrent_adds_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buf = _buffer(tmp_path)
    real_fsync = os.fsync
    synced: list[str] = []

    def slow_fsync(fd: int) -> None:
        time.sleep(0.005)
        real_fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fsync", slow_fsync)
    buf.add([_record(0)])
    assert len(synced) >= 1 and synced[-1].endswith(".journal")

    synced.clear()
    threads_n, adds_n = 8, 10

    def producer(t: int) -> None:
        for a in range(adds_n):
            buf.add([_record(1 + t * adds_n + a)])

    producers = [threading.Thread(target=producer, args=(t,)) for t in range(threads_n)]
    for thread in producers:
        thread.start()
    for thread in producers:
        thread.join()

    journal_syncs = [path for path in synced if path.endswith(".journal")]
    assert 1 <= len(journal_syncs) < threads_n * adds_n / 2
    buf.flush()
    assert sorted(_delivered(buf.destination)) == [f"e{i:06d}" for i in range(81)]


CHILD = """
import sys, time
from pathlib import Path
from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory
root = Path(sys.argv[1])
buf = DeliveryBuffer(LocalDirectory(root / "landing"), DeliveryConfig(buffer_interval_s=3600),
                     journal_dir=root / "journal")
for a in range(20):
    buf.add([b'{"event_id":"e%06d"}' % (a * 10 + k) for k in range(10)])
print("ADDED", flush=True)
time.sleep(60)
"""


def test_records_survive_sigkill_right_after_add(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ADDED"
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert LocalDirectory(tmp_path / "landing").list_keys() == []

    buf = _buffer(tmp_path)
    buf.flush()

    assert _delivered(buf.destination) == [f"e{i:06d}" for i in range(200)]
