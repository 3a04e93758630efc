"""Benchmarks for the batch path, each against its target and, for enrichment, a baseline
measured in the same run (naive per-row Faker calls)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from rich.table import Table

from ingestion.config import Settings
from ingestion.progress import Reporter, SilentReporter

BASELINE_SAMPLE_ROWS = 2_000
ENRICH_CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class BenchFigures:
    rows: int
    generate_rows_per_s: float
    enrich_rows_per_s: float
    enrich_baseline_rows_per_s: float
    load_rows_per_s: float
    dbt_build_s: float
    pipeline_s: float
    peak_rss_mb: float

    @property
    def enrich_speedup(self) -> float:
        return self.enrich_rows_per_s / self.enrich_baseline_rows_per_s

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "enrich_speedup": round(self.enrich_speedup, 1)}

    def checks(self) -> list[tuple[str, str, str, bool]]:
        """(measure, measured, target, met) rows."""
        pipeline_target = "≤ 20 s" if self.rows <= 129_880 else "completes"
        rss_limit_mb = 4096
        return [
            (
                "generate",
                f"{self.generate_rows_per_s:,.0f} rows/s",
                "≥ 1,000,000 rows/s",
                self.generate_rows_per_s >= 1e6,
            ),
            (
                "enrich",
                f"{self.enrich_rows_per_s:,.0f} rows/s",
                "≥ 1,000,000 rows/s",
                self.enrich_rows_per_s >= 1e6,
            ),
            (
                "enrich vs naive Faker (same run)",
                f"{self.enrich_speedup:,.0f}× ({self.enrich_baseline_rows_per_s:,.0f} rows/s)",
                "≥ 100×",
                self.enrich_speedup >= 100,
            ),
            (
                "load",
                f"{self.load_rows_per_s:,.0f} rows/s",
                "≥ 500,000 rows/s",
                self.load_rows_per_s >= 5e5,
            ),
            ("dbt build + publish", f"{self.dbt_build_s:.1f} s", "(reported)", True),
            (
                f"contrail run --no-serve --rows {self.rows}",
                f"{self.pipeline_s:.1f} s",
                pipeline_target,
                self.pipeline_s <= 20 or self.rows > 129_880,
            ),
            (
                "pipeline peak RSS",
                f"{self.peak_rss_mb:,.0f} MB",
                "< 4,096 MB",
                self.peak_rss_mb < rss_limit_mb,
            ),
        ]

    def table(self) -> Table:
        table = Table(title=f"Contrail batch benchmarks ({self.rows:,} rows)")
        for column in ("Measure", "Measured", "Target", "Met"):
            table.add_column(column)
        for measure, measured, target, met in self.checks():
            table.add_row(measure, measured, target, "[green]yes[/]" if met else "[red]no[/]")
        return table


def _time_enrich(rows: int, seed: int) -> float:
    """Rows per second of enrich() over generated rows, timing only the enrichment.

    One small call first builds the airport and route tables, a once-per-process cost.
    """
    from ingestion.enrich import enrich
    from ingestion.generate import generate_table

    enrich(generate_table(1_000, seed=seed), seed=seed, file_key="warm-up")
    spent = 0.0
    done = 0
    chunk_index = 0
    while done < rows:
        n = min(ENRICH_CHUNK_ROWS, rows - done)
        table = generate_table(n, seed=seed + chunk_index)
        started = time.perf_counter()
        enrich(table, seed=seed, file_key="bench", first_row=done)
        spent += time.perf_counter() - started
        done += n
        chunk_index += 1
    return rows / spent


def _time_baseline(seed: int) -> float:
    from ingestion.enrich_baseline import naive_enrich_rows
    from ingestion.generate import generate_table

    table = generate_table(BASELINE_SAMPLE_ROWS, seed=seed)
    started = time.perf_counter()
    naive_enrich_rows(table, seed=seed)
    return BASELINE_SAMPLE_ROWS / (time.perf_counter() - started)


def _time_pipeline(rows: int, data_dir: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `contrail run --no-serve --rows N` in a fresh data dir."""
    env = {**os.environ, "CONTRAIL_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "ingestion.cli", "run", "--no-serve", "--rows", str(rows)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        from ingestion.errors import ContrailError

        raise ContrailError(f"benchmark pipeline run failed with exit code {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def run_benchmarks(
    settings: Settings, *, rows: int, seed: int = 42, reporter: Reporter | None = None
) -> BenchFigures:
    """Run every batch benchmark in a scratch folder under the data directory."""
    from ingestion.generate import write_csv
    from ingestion.load_csv import load_csv
    from ingestion.pipeline import build

    reporter = reporter or SilentReporter()
    scratch = settings.data_dir / "bench"
    shutil.rmtree(scratch, ignore_errors=True)
    bench_settings = replace(settings, data_dir=scratch / "steps")
    csv = scratch / "surveys.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)

    write_csv(scratch / "warm-up.csv", 1_000, seed)  # first-call set-up is not throughput
    with reporter.step("generate", rows) as advance:
        started = time.perf_counter()
        write_csv(csv, rows, seed, progress=advance)
        generate_rate = rows / (time.perf_counter() - started)

    with reporter.step("enrich", None, unit="steps") as advance:
        enrich_rate = _time_enrich(rows, seed)
        advance(1)
        baseline_rate = _time_baseline(seed)
        advance(1)

    with reporter.step("load", csv.stat().st_size, unit="bytes") as advance:
        started = time.perf_counter()
        loaded = load_csv(csv, bench_settings, seed=seed, progress=advance)
        load_rate = loaded.rows_in_file / (time.perf_counter() - started)

    started = time.perf_counter()
    build(bench_settings, reporter=reporter)
    build_seconds = time.perf_counter() - started

    with reporter.step(f"contrail run --no-serve --rows {rows}", None, unit="runs") as advance:
        pipeline_seconds, peak_rss_mb = _time_pipeline(rows, scratch / "pipeline")
        advance(1)

    shutil.rmtree(scratch, ignore_errors=True)
    return BenchFigures(
        rows=rows,
        generate_rows_per_s=round(generate_rate),
        enrich_rows_per_s=round(enrich_rate),
        enrich_baseline_rows_per_s=round(baseline_rate, 1),
        load_rows_per_s=round(load_rate),
        dbt_build_s=round(build_seconds, 2),
        pipeline_s=round(pipeline_seconds, 2),
        peak_rss_mb=round(peak_rss_mb, 1),
    )
