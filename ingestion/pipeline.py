"""The batch pipeline: build the marts and publish them, or generate, load and build in one go."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ingestion.build import BuildResult, describe_failures, invoke_dbt
from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.progress import Reporter, SilentReporter
from ingestion.publish import publish

DEFAULT_ROWS = 129_880  # the size of the full public Invistico export
DEFAULT_SEED = 42


@dataclass(frozen=True)
class BuildOutcome:
    result: BuildResult
    snapshot: Path | None  # the published DuckDB snapshot; None on other targets


def build(
    settings: Settings,
    *,
    target: str = "duckdb",
    select: str | None = None,
    reporter: Reporter | None = None,
) -> BuildOutcome:
    """Run `dbt build`; on DuckDB publish the snapshot once it passes.

    A failing model or test raises ContrailError and publishes nothing, so the previous
    snapshot stays in place.
    """
    reporter = reporter or SilentReporter()
    extra = ["--select", select] if select else []
    with reporter.step(f"dbt build ({target})", None, unit="nodes") as advance:
        result = invoke_dbt(
            "build", settings, target=target, extra=extra, on_node=lambda _node: advance(1)
        )
    if not result.success:
        raise ContrailError(
            f"dbt build failed on {target}: {describe_failures(result)}. "
            "Nothing was published; the previous snapshot is unchanged. "
            f"Details: {settings.data_dir / 'dbt' / 'logs' / 'dbt.log'}"
        )
    if target == "duckdb":
        with reporter.step("dbt source freshness", None, unit="sources"):
            # Warn-only checks, recorded in sources.json for the dashboards; never fail a build.
            invoke_dbt("source freshness", settings, target=target)
        snapshot = publish(settings)
    else:
        snapshot = None
    return BuildOutcome(result, snapshot)


def generated_csv_path(settings: Settings, rows: int, seed: int) -> Path:
    return settings.generated_dir / f"surveys_{rows}_seed{seed}.csv"


def generate_file(
    settings: Settings,
    *,
    rows: int,
    seed: int,
    out: Path | None = None,
    reporter: Reporter | None = None,
) -> Path:
    """Write a synthetic export in the Invistico layout and return its path."""
    from ingestion.generate import write_csv

    if rows <= 0:
        raise ContrailError(f"--rows must be a positive number of surveys, not {rows}")
    reporter = reporter or SilentReporter()
    out = out or generated_csv_path(settings, rows, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with reporter.step(f"Generating {out.name}", rows) as advance:
        write_csv(out, rows, seed, progress=advance)
    return out


@dataclass
class RunResult:
    csv: Path
    load: object  # ingestion.load_csv.LoadResult
    build: BuildOutcome
    seconds: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    settings: Settings,
    *,
    csv: Path | None = None,
    rows: int = DEFAULT_ROWS,
    seed: int = DEFAULT_SEED,
    target: str = "duckdb",
    reporter: Reporter | None = None,
) -> RunResult:
    """Generate (unless a CSV is given), load, build and publish. Returns what each step did."""
    from ingestion.load_csv import load_csv

    reporter = reporter or SilentReporter()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if csv is None:
        csv = generate_file(settings, rows=rows, seed=seed, reporter=reporter)
        seconds["generate"] = time.perf_counter() - started
    elif not csv.exists():
        raise ContrailError(f"{csv}: no such file")

    started = time.perf_counter()
    size = csv.stat().st_size
    with reporter.step(f"Loading {csv.name}", size, unit="bytes") as advance:
        loaded = load_csv(csv, settings, target=target, seed=seed, progress=advance)
    seconds["load"] = time.perf_counter() - started

    started = time.perf_counter()
    built = build(settings, target=target, reporter=reporter)
    seconds["build"] = time.perf_counter() - started
    return RunResult(csv, loaded, built, seconds)
