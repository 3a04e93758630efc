"""Benchmarks for the stream path (`contrail bench --stream`), each with a baseline measured in
the same run: for the API, a plain in-process call of its validator on the same bodies; for
a micro-batch cycle, a full `dbt build` on the same history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.loadgen import post_all, request_bytes
from ingestion.progress import Reporter, SilentReporter
from ingestion.replay import synthetic_surveys
from ingestion.services import running_api


def _bodies(count: int, seed: int, batch: int) -> list[bytes]:
    surveys = list(synthetic_surveys(count * batch, seed))
    if batch == 1:
        return [json.dumps(s).encode() for s in surveys]
    return [json.dumps(surveys[i : i + batch]).encode() for i in range(0, len(surveys), batch)]


def _validator_rate(bodies: list[bytes], surveys_per_body: int) -> float:
    """Surveys per second through the API's own validator, in-process (the baseline)."""
    from ingestion.api.validation import parse_body

    started = time.perf_counter()
    for body in bodies:
        parse_body(body, max_batch=500)
    return len(bodies) * surveys_per_body / (time.perf_counter() - started)


def measure_api(
    data_dir: Path,
    *,
    seconds: float = 10.0,
    concurrency: int = 32,
    singles: int = 20_000,
    batches: int = 200,
    seed: int = 42,
) -> dict[str, float]:
    """Sustained single-survey POSTs/s and batched surveys/s over HTTP, with baselines.

    Each run stops after ``seconds`` or when its prepared bodies run out.
    """
    single_bodies = _bodies(singles, seed, 1)
    batch_bodies = _bodies(batches, seed + 1, 500)
    figures = {
        "api_single_baseline_per_s": _validator_rate(single_bodies, 1),
        "api_batch_baseline_per_s": _validator_rate(batch_bodies, 500),
    }
    with running_api(data_dir, buffer_interval_s=1.0) as url:
        single = post_all(
            url,
            [request_bytes(url, "/v1/surveys", body) for body in single_bodies],
            concurrency=concurrency,
            seconds=seconds,
        )
        batch = post_all(
            url,
            [request_bytes(url, "/v1/surveys", body) for body in batch_bodies],
            concurrency=4,
            seconds=seconds,
        )
    for name, run in (("single", single), ("batch", batch)):
        if set(run.statuses) != {202}:
            raise ContrailError(f"API benchmark ({name}) got statuses {dict(run.statuses)}")
    figures["api_single_rps"] = single.rate
    figures["api_batch_surveys_per_s"] = batch.rate * 500
    return figures


def measure_firehose_load(settings: Settings, *, records: int = 200_000, seed: int = 42) -> float:
    """Records per second of `load_firehose` over ~5 MiB delivery objects."""
    from ingestion.load_firehose import load_firehose
    from ingestion.replay import replay

    replay(settings, synthetic_surveys(records, seed), to="firehose-dir", batch_size=500)
    started = time.perf_counter()
    result = load_firehose(settings)
    seconds = time.perf_counter() - started
    if result.loaded != records:
        raise ContrailError(f"firehose benchmark loaded {result.loaded} of {records} records")
    return records / seconds


FRESHNESS_SQL = """
with first_visible as (
    select
        events.event_id,
        events.submitted_at,
        min(cycles.published_at) as published_at
    from raw.survey_events as events
    inner join raw.stream_cycles as cycles
        on cycles.published_at >= events.loaded_at
    group by events.event_id, events.submitted_at
)
select
    count(*),
    quantile_cont(date_diff('millisecond', submitted_at, published_at) / 1000.0, 0.5),
    quantile_cont(date_diff('millisecond', submitted_at, published_at) / 1000.0, 0.95)
from first_visible
"""


def measure_freshness(
    data_dir: Path, *, rate: float = 500.0, duration: float = 120.0, interval_s: float = 5.0
) -> dict[str, float]:
    """Event-to-snapshot seconds (p50, p95) with the API, the runner and a steady replay.

    Each event's freshness is the time from its ``submitted_at`` to the publish of the first
    cycle that finished after it landed (raw.stream_cycles).
    """
    from dataclasses import replace

    from ingestion.demo import stream_demo
    from ingestion.warehouse import connect_duckdb

    settings = replace(Settings.from_env(), data_dir=data_dir)
    result = stream_demo(settings, rate=rate, duration=duration, interval_s=interval_s)
    conn = connect_duckdb(settings.warehouse_path, read_only=True)
    try:
        events, p50, p95 = conn.execute(FRESHNESS_SQL).fetchone()
    finally:
        conn.close()
    if events < result.replay.accepted:
        raise ContrailError(
            f"freshness benchmark: only {events} of {result.replay.accepted} events were published"
        )
    return {"freshness_p50_s": float(p50), "freshness_p95_s": float(p95), "events": events}


CYCLE_SCRIPT = """
import json, sys
from ingestion.config import Settings
from ingestion.replay import replay, synthetic_surveys
from ingestion.stream import StreamSession, release_warehouse, run_cycle

settings = Settings.from_env()
batch, seed = int(sys.argv[1]), int(sys.argv[2])
session = StreamSession(settings, seed=seed, refresh_health=False)
# Warm-up, as in a running stream: two small cycles parse the project, move the incremental
# models' watermark to now, and give the run its two snapshot slots (a run's first two
# publishes copy the warehouse file; later ones patch the older slot). The measured cycle
# then starts warm.
for n in (1, 2):
    replay(settings, synthetic_surveys(250, seed + n), to="firehose-dir", batch_size=250)
    run_cycle(settings, session)
replay(settings, synthetic_surveys(batch, seed), to="firehose-dir", batch_size=500)
cycle = run_cycle(settings, session)
release_warehouse()
print(json.dumps({
    "cycle_s": cycle.cycle_s,
    "records_loaded": cycle.records_loaded,
    "build_s": cycle.build_s,
    "publish_s": cycle.publish_s,
    "snapshot_patched": cycle.snapshot_patched,
}))
"""


@dataclass(frozen=True)
class CycleCost:
    """One measured micro-batch (with its dbt build and publish steps) and the full build."""

    cycle_s: float
    build_s: float
    publish_s: float
    full_build_s: float


def measure_cycle(
    settings: Settings, *, history: int, batch: int = 5_000, seed: int = 42
) -> CycleCost:
    """Seconds of one warm micro-batch of ``batch`` events on top of ``history`` loaded surveys,
    and of a full `dbt build` on the same history (the baseline).

    The cycle runs in a fresh process, as `contrail stream run` does, after two warm-up cycles
    of 250 events (steady state: the history landed long ago, the stream is running, and its
    publishes patch a snapshot slot rather than copy the warehouse file).
    """
    from ingestion.generate import write_csv
    from ingestion.load_csv import load_csv
    from ingestion.pipeline import build
    from ingestion.stream import release_warehouse
    from ingestion.warehouse import connect_duckdb

    csv = settings.data_dir / "history.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    write_csv(csv, history, seed)
    load_csv(csv, settings, seed=seed)
    csv.unlink()
    # The history stands for surveys landed long ago: move it out of the incremental models'
    # lookback window (var lookback_minutes), or the first cycle would reprocess all of it.
    conn = connect_duckdb(settings.warehouse_path)
    try:
        conn.execute("update raw.survey_responses set loaded_at = loaded_at - interval 1 day")
    finally:
        conn.close()
    started = time.perf_counter()
    build(settings)
    full_build_s = time.perf_counter() - started
    release_warehouse()  # the cycle's process must be the file's only writer

    env = {**os.environ, "CONTRAIL_DATA_DIR": str(settings.data_dir)}
    done = subprocess.run(
        [sys.executable, "-c", CYCLE_SCRIPT, str(batch), str(seed + 7)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise ContrailError(f"cycle benchmark failed: {done.stderr.strip()[-500:]}")
    cycle = json.loads(done.stdout.strip().splitlines()[-1])
    if cycle["records_loaded"] != batch:
        raise ContrailError(f"cycle benchmark loaded {cycle['records_loaded']} of {batch} events")
    if not cycle["snapshot_patched"]:
        raise ContrailError(
            "cycle benchmark: the measured cycle copied the snapshot instead of patching it "
            "(a reader held its slot open?); a running stream patches, so the figure would "
            "not be the steady state"
        )
    return CycleCost(
        cycle_s=float(cycle["cycle_s"]),
        build_s=float(cycle["build_s"]),
        publish_s=float(cycle["publish_s"]),
        full_build_s=full_build_s,
    )


@dataclass(frozen=True)
class StreamBenchFigures:
    api_single_rps: float
    api_single_baseline_per_s: float
    api_batch_surveys_per_s: float
    api_batch_baseline_per_s: float
    firehose_load_records_per_s: float
    freshness_p50_s: float
    freshness_p95_s: float
    cycle_s_small_history: float
    cycle_s_large_history: float
    full_build_s_small_history: float
    full_build_s_large_history: float
    small_history: int
    large_history: int
    # The measured cycles' own steps: the incremental dbt build and the snapshot publish.
    cycle_build_s_small_history: float
    cycle_build_s_large_history: float
    cycle_publish_s_small_history: float
    cycle_publish_s_large_history: float

    @property
    def cycle_ratio(self) -> float:
        return self.cycle_s_large_history / self.cycle_s_small_history

    @property
    def full_build_ratio(self) -> float:
        return self.full_build_s_large_history / self.full_build_s_small_history

    def as_dict(self) -> dict[str, float]:
        figures = {**asdict(self), "cycle_ratio": self.cycle_ratio}
        return {k: round(v, 2) for k, v in figures.items()}

    def checks(self) -> list[tuple[str, str, str, bool]]:
        return [
            (
                "API single POSTs",
                f"{self.api_single_rps:,.0f}/s "
                f"(validator alone {self.api_single_baseline_per_s:,.0f}/s)",
                "≥ 1,500/s",
                self.api_single_rps >= 1_500,
            ),
            (
                "API batched surveys",
                f"{self.api_batch_surveys_per_s:,.0f}/s "
                f"(validator alone {self.api_batch_baseline_per_s:,.0f}/s)",
                "≥ 20,000/s",
                self.api_batch_surveys_per_s >= 20_000,
            ),
            (
                "delivery-object load",
                f"{self.firehose_load_records_per_s:,.0f} records/s",
                "≥ 100,000/s",
                self.firehose_load_records_per_s >= 100_000,
            ),
            (
                "freshness, event to snapshot",
                f"p50 {self.freshness_p50_s:.1f} s · p95 {self.freshness_p95_s:.1f} s",
                "p95 ≤ 15 s",
                self.freshness_p95_s <= 15,
            ),
            (
                f"cycle of 5,000 events on {self.small_history:,} surveys",
                f"{self.cycle_s_small_history:.1f} s "
                f"(dbt {self.cycle_build_s_small_history:.1f} s, "
                f"publish {self.cycle_publish_s_small_history:.1f} s; "
                f"full build {self.full_build_s_small_history:.1f} s)",
                "(reported)",
                True,
            ),
            (
                f"cycle of 5,000 events on {self.large_history:,} surveys",
                f"{self.cycle_s_large_history:.1f} s "
                f"(dbt {self.cycle_build_s_large_history:.1f} s, "
                f"publish {self.cycle_publish_s_large_history:.1f} s; "
                f"full build {self.full_build_s_large_history:.1f} s)",
                "(reported)",
                True,
            ),
            (
                f"cycle cost, {self.large_history // self.small_history}× the history",
                f"{self.cycle_ratio:.2f}× (full build {self.full_build_ratio:.2f}×)",
                "< 2×: grows with the batch, not the history",
                self.cycle_ratio < 2,
            ),
        ]

    def table(self) -> Table:
        table = Table(title="Contrail stream benchmarks")
        for column in ("Measure", "Measured", "Target", "Met"):
            table.add_column(column)
        for measure, measured, target, met in self.checks():
            table.add_row(measure, measured, target, "[green]yes[/]" if met else "[red]no[/]")
        return table


def run_stream_benchmarks(
    settings: Settings,
    *,
    api_seconds: float = 10.0,
    freshness_rate: float = 500.0,
    freshness_seconds: float = 120.0,
    small_history: int = 100_000,
    large_history: int = 5_000_000,
    seed: int = 42,
    reporter: Reporter | None = None,
) -> StreamBenchFigures:
    """Every stream benchmark, in a scratch folder under the data directory."""
    import shutil
    from dataclasses import replace

    reporter = reporter or SilentReporter()
    scratch = settings.data_dir / "bench-stream"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with reporter.step("stream benchmarks", 5, unit="steps") as advance:
            api = measure_api(scratch / "api", seconds=api_seconds, seed=seed)
            advance(1)
            load_rate = measure_firehose_load(
                replace(settings, data_dir=scratch / "load"), seed=seed
            )
            advance(1)
            fresh = measure_freshness(
                scratch / "freshness", rate=freshness_rate, duration=freshness_seconds
            )
            advance(1)
            small = measure_cycle(
                replace(settings, data_dir=scratch / "small"), history=small_history, seed=seed
            )
            advance(1)
            large = measure_cycle(
                replace(settings, data_dir=scratch / "large"), history=large_history, seed=seed
            )
            advance(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StreamBenchFigures(
        api_single_rps=api["api_single_rps"],
        api_single_baseline_per_s=api["api_single_baseline_per_s"],
        api_batch_surveys_per_s=api["api_batch_surveys_per_s"],
        api_batch_baseline_per_s=api["api_batch_baseline_per_s"],
        firehose_load_records_per_s=load_rate,
        freshness_p50_s=fresh["freshness_p50_s"],
        freshness_p95_s=fresh["freshness_p95_s"],
        cycle_s_small_history=small.cycle_s,
        cycle_s_large_history=large.cycle_s,
        full_build_s_small_history=small.full_build_s,
        full_build_s_large_history=large.full_build_s,
        small_history=small_history,
        large_history=large_history,
        cycle_build_s_small_history=small.build_s,
        cycle_build_s_large_history=large.build_s,
        cycle_publish_s_small_history=small.publish_s,
        cycle_publish_s_large_history=large.publish_s,
    )
