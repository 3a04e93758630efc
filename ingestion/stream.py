"""The micro-batch runner behind ``contrail stream run``: flush, load, build, publish, record.

Each cycle:

1. **Flush** the delivery buffers nobody else will flush. Every directory under
   ``data/journal/`` is the journal of one ``DeliveryBuffer`` (the API's is ``journal/api``,
   replay's ``journal/replay``). A live owner holds the journal's lock and delivers by itself
   (the API checks its buffer every 0.2 s and delivers what is due), so a locked journal is
   left alone. An unlocked journal that still holds segments belongs to an owner that died
   (SIGKILL, power loss): the runner opens a buffer on it, which re-buffers the journaled
   records, and delivers them all; they are all overdue, since their owner is gone.
2. **Load** new delivery objects (``ingestion.load_firehose.load_firehose``; one transaction
   per object, so a crash loses nothing and a rerun loads the rest).
3. **Build**: ``dbt build --selector stream_cycle`` in-process. dbt stays warm: the project is
   parsed once (``dbt parse`` returns the manifest) and the manifest is handed to every later
   ``dbtRunner``, re-parsed only when a project file changes. A cycle that loaded nothing skips
   the build, except the first cycle of a run, which always builds so that anything an
   interrupted run loaded but did not build or publish becomes visible; a warehouse missing
   any model (a fresh one, or a new model) gets a full build instead.
4. **Publish** the DuckDB snapshot (``ingestion.publish``; on PostgreSQL the build is the
   publish). The run publishes through two snapshot slots and, after its first two publishes,
   patches the older slot with what changed instead of copying the warehouse file
   (``SnapshotSlots``).
5. **Record** the cycle in ``raw.stream_cycles``: what it published and its freshness, the
   seconds from each event's ``submitted_at`` to ``published_at`` (p50/p95/max) over the
   events of the delivery objects loaded since the previous cycle's publish. The row is
   written after the publish, so ``mart_pipeline_health`` shows it from the next build; an
   idle cycle (nothing new loaded) rebuilds that one mart and publishes when it lags.

Crash safety: SIGKILL at any point, then a restart, loses and duplicates nothing. Delivery is
at least once (a journal segment outlives its object until the object is written), loads are
transactional and skip objects already audited, staging deduplicates on ``event_id`` and
surveys on ``survey_id``, the first cycle of a run rebuilds, and a publish swaps the snapshot
atomically (a killed publish leaves the previous snapshot and a temporary file, removed at the
next start; a killed patch rolls back, and a restarted run copies its first snapshots whole).

Ctrl-C and SIGTERM stop the runner cleanly after the step in progress.
"""

from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import logging
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ingestion.build import BuildResult, NodeOutcome, check_target, dbt_args, describe_failures
from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.progress import Reporter, SilentReporter
from ingestion.publish import SnapshotSlots
from ingestion.schema import LOAD_AUDIT, STREAM_CYCLES, SURVEY_EVENTS

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
SELECTOR = "stream_cycle"
HEALTH_MODEL = "mart_pipeline_health"
# The steps of a cycle, in order; ``on_step`` is called with each name before it runs.
STEPS = ("flush", "load", "build", "publish", "record")
_JOURNAL_LOCK = "journal.lock"
_SEGMENT_GLOB = "segment-*.journal"
# Files whose change invalidates the parsed manifest (relative to the repository root).
_PROJECT_FILES = ("dbt_project.yml", "selectors.yml", "packages.yml", "dependencies.yml")
_PROJECT_DIRS = ("dbt_project",)
_FAILING = {"error", "fail", "runtime error"}


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _epoch(at: datetime) -> float:
    """Seconds since the epoch of a naive UTC timestamp."""
    return calendar.timegm(at.timetuple()) + at.microsecond / 1e6


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """Seconds from ``submitted_at`` to ``published_at`` over the events of one publish."""

    events: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, submitted_epoch: np.ndarray, published_at: datetime) -> Freshness:
        if submitted_epoch.size == 0:
            return cls(0, None, None, None)
        ages = _epoch(published_at) - submitted_epoch.astype(np.float64)
        p50, p95 = np.percentile(ages, [50, 95])
        return cls(int(ages.size), float(p50), float(p95), float(ages.max()))


@dataclass(frozen=True)
class CycleResult:
    """What one cycle did. ``build`` is 'stream', 'full', 'health' or 'none'."""

    cycle_id: str
    started_at: datetime
    published_at: datetime | None = None
    journals_flushed: int = 0  # orphaned journals delivered
    objects_flushed: int = 0  # delivery objects written from them
    objects_loaded: int = 0  # by this cycle's load
    records_loaded: int = 0
    records_quarantined: int = 0
    build: str = "none"
    parsed: bool = False  # dbt parsed the project this cycle (cold, or a project file changed)
    # What this cycle's publish made visible (what raw.stream_cycles records).
    objects_published: int = 0
    events_published: int = 0
    events_quarantined: int = 0
    freshness: Freshness = field(default_factory=lambda: Freshness(0, None, None, None))
    flush_s: float = 0.0
    load_s: float = 0.0
    build_s: float = 0.0
    publish_s: float = 0.0
    # The publish patched the older snapshot slot instead of copying the warehouse file.
    snapshot_patched: bool = False
    cycle_s: float = 0.0
    recorded: bool = False  # a row was written to raw.stream_cycles
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM before the cycle finished


# --- step 1: flush orphaned journals ----------------------------------------------------------


def journal_root(settings: Settings) -> Path:
    """Where delivery buffers keep their journals, one directory each."""
    return settings.data_dir / "journal"


def journal_is_locked(journal_dir: Path) -> bool:
    """True while a live ``DeliveryBuffer`` owns the journal (it holds an flock on its lock)."""
    lock = journal_dir / _JOURNAL_LOCK
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


@dataclass(frozen=True)
class FlushReport:
    journals: int  # orphaned journals delivered
    keys: tuple[str, ...]  # objects written
    live: tuple[Path, ...]  # journals left to their live owner


def flush_orphaned_journals(settings: Settings) -> FlushReport:
    """Deliver every journal under ``data/journal/`` that holds records and has no live owner.

    A journal locked by a live process (the API, a replay) is skipped: its owner delivers by
    itself. Opening a buffer takes the journal's lock for the moment of the delivery, so an
    API started at that very moment refuses to start with a clear message; restart it.
    """
    from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory

    root = journal_root(settings)
    if not root.is_dir():
        return FlushReport(0, (), ())
    keys: list[str] = []
    live: list[Path] = []
    journals = 0
    for journal_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if not any(journal_dir.glob(_SEGMENT_GLOB)):
            continue
        if journal_is_locked(journal_dir):
            live.append(journal_dir)
            continue
        try:
            buffer = DeliveryBuffer(
                LocalDirectory.for_settings(settings), DeliveryConfig(), journal_dir=journal_dir
            )
        except ContrailError:  # its owner came back between the probe and here
            live.append(journal_dir)
            continue
        with buffer:
            delivered = buffer.flush()
        if delivered:
            journals += 1
            keys.extend(delivered)
            log.info("%s: delivered %d orphaned objects", journal_dir, len(delivered))
    return FlushReport(journals, tuple(keys), tuple(live))


_TEMPORARY = re.compile(r"^\..+\.(\d+)(\.link)?\.tmp(\.wal)?$")


def remove_stale_publish_files(settings: Settings) -> list[Path]:
    """Delete temporary snapshot files (copies, links, in the serving folder and the slots')
    left by a publish that was killed (its pid is gone)."""
    removed = []
    for folder in (settings.serving_path.parent, settings.serving_slots_dir):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            match = _TEMPORARY.match(path.name)
            if match is None:
                continue
            pid = int(match.group(1))
            if pid == os.getpid() or _alive(pid):
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- warehouse queries -------------------------------------------------------------------------


class _Warehouse:
    """Short queries on the warehouse (DuckDB or PostgreSQL); '?' marks a parameter."""

    def __init__(self, settings: Settings, target: str) -> None:
        self.settings = settings
        self.target = target

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        from ingestion.warehouse import connect_duckdb, connect_postgres

        if self.target == "duckdb":
            conn = connect_duckdb(self.settings.warehouse_path)
        else:
            conn = connect_postgres(self.settings.postgres)
        try:
            yield conn
        finally:
            conn.close()

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            if self.target == "duckdb":
                return [tuple(r) for r in conn.execute(sql, params or []).fetchall()]
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params or [])
                rows = [tuple(r) for r in cur.fetchall()]
            conn.rollback()
            return rows

    def try_query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]] | None:
        """The rows, or None when the query fails (a relation or column that does not exist)."""
        try:
            return self.query(sql, params)
        except ContrailError:
            raise
        except Exception:  # duckdb.CatalogException, psycopg2 errors, ...
            return None

    def insert(self, table: str, row: dict[str, Any]) -> None:
        names = list(row)
        sql = f"insert into {table} ({', '.join(names)}) values ({', '.join('?' for _ in names)})"
        with self._connection() as conn:
            if self.target == "duckdb":
                conn.execute(sql, [row[n] for n in names])
                return
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), [row[n] for n in names])
            conn.commit()

    def relations(self) -> set[tuple[str, str]]:
        rows = self.query("select table_schema, table_name from information_schema.tables")
        return {(str(s).lower(), str(n).lower()) for s, n in rows}


# --- step 3: dbt, kept warm ---------------------------------------------------------------------


class WarmDbt:
    """Runs dbt in-process, parsing the project once and reusing the manifest.

    Parsed manifests are kept for the life of the process, keyed by the project's fingerprint,
    so a second run in one process (a benchmark, a test) starts warm too. ``warm=False``
    parses on every build (what a fresh ``dbt build`` does), for comparison.
    """

    _parsed: ClassVar[dict[tuple[Any, ...], Any]] = {}  # fingerprint -> manifest

    def __init__(self, settings: Settings, target: str, *, warm: bool = True) -> None:
        self.settings = settings
        self.target = check_target(target)
        self.warm = warm
        self.manifest: Any = None
        self._fingerprint: tuple[Any, ...] | None = None
        self.parses = 0

    def fingerprint(self) -> tuple[Any, ...]:
        """Name, size and mtime of every project file, plus the target and its settings."""
        root = self.settings.repo_root
        entries: list[tuple[str, int, int]] = []
        for name in _PROJECT_FILES:
            with contextlib.suppress(FileNotFoundError):
                st = (root / name).stat()
                entries.append((name, st.st_size, st.st_mtime_ns))
        for folder in _PROJECT_DIRS:
            for dirpath, dirnames, filenames in os.walk(root / folder):
                dirnames.sort()
                for filename in sorted(filenames):
                    path = os.path.join(dirpath, filename)
                    with contextlib.suppress(FileNotFoundError):
                        st = os.stat(path)
                        entries.append((path, st.st_size, st.st_mtime_ns))
        # The DuckDB file's folder does not reach the manifest (its database is the file's stem).
        env = {**self.settings.dbt_env(), "CONTRAIL_DUCKDB_PATH": self.settings.warehouse_path.stem}
        return (str(root), self.target, tuple(sorted(env.items())), tuple(entries))

    def ensure_manifest(self) -> bool:
        """Parse the project unless the manifest is current; True when it parsed.

        Cold (``warm=False``), the manifest is parsed once only to list the project's
        relations; every build parses again.
        """
        if self.manifest is not None and not self.warm:
            return False
        fingerprint = self.fingerprint()
        if self.manifest is not None and fingerprint == self._fingerprint:
            return False
        if self.warm and fingerprint in WarmDbt._parsed:
            self.manifest, self._fingerprint = WarmDbt._parsed[fingerprint], fingerprint
            return False
        from dbt.cli.main import dbtRunner

        os.environ.update(self.settings.dbt_env())
        result = dbtRunner().invoke(dbt_args("parse", self.settings, self.target, ["--quiet"]))
        if not result.success or result.result is None:
            raise ContrailError(
                f"dbt parse on {self.target} failed: {result.exception or 'see dbt.log'}. "
                f"Details: {self.settings.data_dir / 'dbt' / 'logs' / 'dbt.log'}"
            )
        self.manifest = result.result
        self._fingerprint = fingerprint
        if self.warm:
            WarmDbt._parsed.clear()  # keep one: a manifest holds the whole project
            WarmDbt._parsed[fingerprint] = self.manifest
        self.parses += 1
        return True

    def model_relations(self) -> set[tuple[str, str]]:
        """(schema, name) of every model and seed the project materialises."""
        if self.manifest is None:
            return set()
        relations = set()
        for node in self.manifest.nodes.values():
            if node.resource_type not in ("model", "seed"):
                continue
            if getattr(node.config, "materialized", None) == "ephemeral":
                continue
            relations.add((node.schema.lower(), (node.alias or node.name).lower()))
        return relations

    def build(self, extra: list[str]) -> BuildResult:
        from dbt.cli.main import dbtRunner

        os.environ.update(self.settings.dbt_env())
        started = time.perf_counter()
        runner = dbtRunner(manifest=self.manifest) if self.warm else dbtRunner()
        result = runner.invoke(dbt_args("build", self.settings, self.target, ["--quiet", *extra]))
        seconds = time.perf_counter() - started
        if result.exception is not None:
            raise ContrailError(f"dbt build on {self.target} could not run: {result.exception}")
        outcomes = tuple(
            NodeOutcome(
                r.node.unique_id,
                str(getattr(r.status, "value", r.status)),
                (r.message or "").strip(),
            )
            for r in (getattr(result.result, "results", None) or [])
        )
        return BuildResult(self.target, bool(result.success), seconds, outcomes)


# --- the session and one cycle ------------------------------------------------------------------


class StreamSession:
    """State that lasts across cycles: the warm dbt manifest and what still needs building."""

    def __init__(
        self,
        settings: Settings,
        *,
        target: str = "duckdb",
        seed: int = 42,
        warm_dbt: bool = True,
        stop: threading.Event | None = None,
        on_step: Callable[[str], None] | None = None,
        refresh_health: bool = True,
    ) -> None:
        self.settings = settings
        self.target = check_target(target)
        self.seed = seed
        self.dbt = WarmDbt(settings, target, warm=warm_dbt)
        self.warehouse = _Warehouse(settings, target)
        self.stop = stop or threading.Event()
        self.on_step = on_step
        self.refresh_health = refresh_health
        # The first cycle builds even when it loads nothing: an earlier run may have loaded
        # objects and died before building or publishing them.
        self.needs_build = True
        self.cycles = 0
        self.slots: SnapshotSlots | None = None  # the run's snapshot slots (DuckDB)
        if target == "duckdb":
            remove_stale_publish_files(settings)

    def step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)

    def stopping(self) -> bool:
        return self.stop.is_set()


def _previous_publish(warehouse: _Warehouse) -> datetime | None:
    rows = warehouse.query(f"select max(published_at) from {STREAM_CYCLES.qualified}")
    return rows[0][0] if rows else None


def _health_lags(warehouse: _Warehouse) -> bool:
    """True when raw.stream_cycles holds a cycle that mart_pipeline_health does not show."""
    recorded = warehouse.query(f"select count(*) from {STREAM_CYCLES.qualified}")[0][0]
    if not recorded:
        return False
    shown = warehouse.try_query(
        f"select count(*) from marts.{HEALTH_MODEL} where row_kind = 'cycle'"
    )
    return shown is None or shown[0][0] < recorded


def _published_since(
    warehouse: _Warehouse, after: datetime | None, until: datetime
) -> tuple[int, int, int, np.ndarray]:
    """Objects, records loaded, records quarantined and the events' submitted_at (epoch s) of
    the delivery objects whose load finished after ``after`` and by ``until``."""
    where = "a.source_kind = 'firehose' and a.status = 'loaded' and a.finished_at <= ?"
    params: list[Any] = [until]
    if after is not None:
        where += " and a.finished_at > ?"
        params.append(after)
    counts = warehouse.query(
        "select count(*), coalesce(sum(a.rows_loaded), 0), coalesce(sum(a.rows_quarantined), 0) "
        f"from {LOAD_AUDIT.qualified} a where {where}",
        params,
    )[0]
    submitted = warehouse.query(
        f"select extract(epoch from e.submitted_at) from {SURVEY_EVENTS.qualified} e "
        f"join {LOAD_AUDIT.qualified} a on a.batch_id = e.batch_id where {where}",
        params,
    )
    epochs = np.fromiter((float(r[0]) for r in submitted), dtype=np.float64, count=len(submitted))
    return int(counts[0]), int(counts[1]), int(counts[2]), epochs


def _choose_build(session: StreamSession, loaded_something: bool) -> tuple[str, list[str]]:
    """Which build this cycle needs, and its dbt arguments."""
    session.dbt.ensure_manifest()
    if session.dbt.model_relations() - session.warehouse.relations():
        return "full", ["--exclude", "resource_type:unit_test"]
    if loaded_something or session.needs_build:
        # stream_cycle: data tests on incremental models check the batch's window (see
        # dbt_project/macros/cycle_window.sql), so the cycle's cost follows the batch.
        return "stream", ["--selector", SELECTOR, "--vars", '{"stream_cycle": true}']
    if session.refresh_health and _health_lags(session.warehouse):
        return "health", ["--select", HEALTH_MODEL]
    return "none", []


def run_cycle(settings: Settings, session: StreamSession) -> CycleResult:
    """One micro-batch: flush orphaned buffers, load, build, publish, record (see module doc)."""
    from ingestion.load_firehose import load_firehose
    from ingestion.publish import publish

    started = time.perf_counter()
    started_at = _now()
    session.cycles += 1
    cycle_id = f"cycle-{started_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    out: dict[str, Any] = {"cycle_id": cycle_id, "started_at": started_at}

    def finish(**values: Any) -> CycleResult:
        return CycleResult(**{**out, **values, "cycle_s": time.perf_counter() - started})

    session.step("flush")
    flushed = flush_orphaned_journals(settings)
    out.update(
        journals_flushed=flushed.journals,
        objects_flushed=len(flushed.keys),
        flush_s=time.perf_counter() - started,
    )
    if session.stopping():
        return finish(interrupted=True)

    session.step("load")
    clock = time.perf_counter()
    loaded = load_firehose(settings, target=session.target, seed=session.seed)
    out.update(
        objects_loaded=len(loaded.objects),
        records_loaded=loaded.loaded,
        records_quarantined=loaded.quarantined,
        load_s=time.perf_counter() - clock,
    )
    if loaded.objects:
        session.needs_build = True
    if session.stopping():
        return finish(interrupted=True)

    session.step("build")
    clock = time.perf_counter()
    parses = session.dbt.parses
    kind, extra = _choose_build(session, bool(loaded.objects))
    build_started_at = _now()
    if kind != "none":
        result = session.dbt.build(extra)
        failures = [o for o in result.outcomes if o.status in _FAILING]
        if not result.success or failures:
            raise ContrailError(
                f"dbt build ({kind}) failed on {session.target}: {describe_failures(result)}. "
                "Nothing was published; the previous snapshot is unchanged and the next cycle "
                f"retries. Details: {settings.data_dir / 'dbt' / 'logs' / 'dbt.log'}"
            )
    out.update(build=kind, parsed=session.dbt.parses > parses, build_s=time.perf_counter() - clock)
    if kind == "none" or session.stopping():
        return finish(interrupted=session.stopping())

    session.step("publish")
    clock = time.perf_counter()
    if session.target == "duckdb":
        if session.slots is None:
            session.slots = SnapshotSlots(settings)
        # A full build may have rewritten any table: only the others may be patched in.
        publish(settings, session.slots, incremental=kind != "full")
        out.update(snapshot_patched=session.slots.history[-1].patched)
    published_at = _now()
    out.update(published_at=published_at, publish_s=time.perf_counter() - clock)
    if kind == "health":
        return finish()
    session.needs_build = False

    session.step("record")
    previous = _previous_publish(session.warehouse)
    objects, events, quarantined, submitted = _published_since(
        session.warehouse, previous, build_started_at
    )
    freshness = Freshness.of(submitted, published_at)
    cycle_s = time.perf_counter() - started
    session.warehouse.insert(
        STREAM_CYCLES.qualified,
        {
            "cycle_id": cycle_id,
            "started_at": started_at,
            "published_at": published_at,
            "objects_loaded": objects,
            "events_loaded": events,
            "events_quarantined": quarantined,
            "freshness_p50_s": freshness.p50_s,
            "freshness_p95_s": freshness.p95_s,
            "freshness_max_s": freshness.max_s,
            "load_s": out["flush_s"] + out["load_s"],
            "build_s": out["build_s"],
            "publish_s": out["publish_s"],
            "cycle_s": cycle_s,
        },
    )
    return CycleResult(
        **out,
        objects_published=objects,
        events_published=events,
        events_quarantined=quarantined,
        freshness=freshness,
        cycle_s=cycle_s,
        recorded=True,
    )


# --- the loop -------------------------------------------------------------------------------


def release_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process between invocations.

    Between cycles it stays open (the runner is the warehouse's only writer); when the run
    ends it is closed, so that other processes (``contrail build``, a loader) can write it.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        if environment is not None:
            with contextlib.suppress(Exception):
                environment.close()
            DuckDBConnectionManager._ENV = None


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C and SIGTERM set ``stop`` (the cycle finishes its step) instead of killing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C interrupts the step itself
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_stream(
    settings: Settings,
    *,
    interval_s: float = DEFAULT_INTERVAL_S,
    once: bool = False,
    max_cycles: int | None = None,
    target: str = "duckdb",
    reporter: Reporter | None = None,
    stop: threading.Event | None = None,
    seed: int = 42,
    warm_dbt: bool = True,
    on_cycle: Callable[[CycleResult], None] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> list[CycleResult]:
    """Run micro-batch cycles every ``interval_s`` seconds until stopped; see the module doc.

    ``once`` runs a single cycle (delivering every orphaned buffer first) and returns.
    ``max_cycles`` stops after that many cycles. ``stop`` (or Ctrl-C / SIGTERM, when called
    from the main thread) ends the run after the step in progress. A failing cycle raises with
    ``once``; in a loop it is logged and the next cycle retries. ``on_cycle`` is called with
    each cycle's result, ``on_step`` with each step's name before it runs.
    """
    if interval_s < 0:
        raise ContrailError(f"--interval {interval_s}: must be 0 or more seconds")
    if max_cycles is not None and max_cycles < 1:
        raise ContrailError(f"--max-cycles {max_cycles}: must be at least 1")
    reporter = reporter or SilentReporter()
    stop = stop or threading.Event()
    session = StreamSession(
        settings,
        target=target,
        seed=seed,
        warm_dbt=warm_dbt,
        stop=stop,
        on_step=on_step,
        refresh_health=not once,
    )
    results: list[CycleResult] = []
    bars: list[Callable[[int], None]] = []  # the current cycle's progress bar

    def step(name: str) -> None:
        if bars:
            bars[-1](1)
        if on_step is not None:
            on_step(name)

    session.on_step = step
    with _stop_on_signals(stop), contextlib.ExitStack() as cleanup:
        cleanup.callback(release_warehouse)
        while not stop.is_set():
            began = time.monotonic()
            result: CycleResult | None = None
            with reporter.step(f"Cycle {session.cycles + 1}", len(STEPS), unit="steps") as bar:
                bars[:] = [bar]
                try:
                    result = run_cycle(settings, session)
                except ContrailError as exc:
                    if once:
                        raise
                    log.error("cycle %d failed, retrying next cycle: %s", session.cycles, exc)
            if result is not None:
                results.append(result)
                if on_cycle is not None:
                    on_cycle(result)
            if once or (max_cycles is not None and session.cycles >= max_cycles):
                break
            stop.wait(max(0.0, interval_s - (time.monotonic() - began)))
    return results
