"""The `contrail` command line: argument parsing and printing, over library functions."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ingestion.config import TARGETS, Settings
from ingestion.errors import ContrailError
from ingestion.pipeline import DEFAULT_ROWS, DEFAULT_SEED
from ingestion.progress import RichReporter

app = typer.Typer(
    help=(
        "Contrail: an analytics warehouse for airline passenger-satisfaction surveys.\n\n"
        "Typical use: `contrail run` generates a realistic survey export, lands it raw, builds "
        "the dbt marts on the embedded DuckDB warehouse and publishes a snapshot for readers."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
load_app = typer.Typer(
    help="Land survey data in the raw schema (with audit, quarantine and reconciliation).",
    no_args_is_help=True,
)
app.add_typer(load_app, name="load")
stream_app = typer.Typer(
    help="The stream path: replay surveys as live events, and land them in micro-batches.",
    no_args_is_help=True,
)
app.add_typer(stream_app, name="stream")

out = Console()
err = Console(stderr=True)

TargetOption = Annotated[
    str,
    typer.Option(
        "--target",
        help=f"Warehouse: {' or '.join(TARGETS)} (PostgreSQL reads CONTRAIL_PG_* variables).",
    ),
]
SeedOption = Annotated[
    int, typer.Option("--seed", help="Random seed; the same seed gives the same data.")
]


def _settings() -> Settings:
    return Settings.from_env()


@app.command()
def generate(
    rows: Annotated[int, typer.Option("--rows", help="How many survey responses to write.")],
    out_file: Annotated[
        Path, typer.Option("--out", help="CSV file to write (.csv, or .csv.gz for gzip).")
    ],
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Write a synthetic survey export in the public Invistico layout.

    The data is calibrated on the public Kaggle file: about 54.7% satisfied, Business class,
    loyal customers and business travel more satisfied, realistic not-applicable (0) ratings and
    delays.
    """
    from ingestion.pipeline import generate_file

    path = generate_file(_settings(), rows=rows, seed=seed, out=out_file, reporter=RichReporter())
    out.print(f"Wrote {rows:,} surveys to {path}")


@load_app.command("csv")
def load_csv_command(
    file: Annotated[Path, typer.Argument(help="The CSV export to land (plain or .csv.gz).")],
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="Header layout: auto (detect), invistico, or passenger-satisfaction.",
        ),
    ] = "auto",
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="YAML column mapping for any other export layout."),
    ] = None,
    target: TargetOption = "duckdb",
    force: Annotated[
        bool, typer.Option("--force", help="Replace the batch if this content was loaded before.")
    ] = False,
    max_bad_share: Annotated[
        float | None,
        typer.Option(
            "--max-bad-share",
            help="Refuse the whole file when more than this share of rows is bad (default 0.05).",
        ),
    ] = None,
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Land one CSV file in raw.survey_responses, enriched with ids, flights and routes.

    Bad rows go to raw.quarantine with their line and reason; the file's rows always equal
    the rows loaded plus the rows quarantined. Loading the same content twice adds nothing.
    """
    from ingestion.load_csv import load_csv

    settings = _settings()
    if max_bad_share is not None:
        settings = replace(settings, max_bad_share=max_bad_share)
    if not file.exists():
        raise ContrailError(f"{file}: no such file")
    reporter = RichReporter()
    with reporter.step(f"Loading {file.name}", file.stat().st_size, unit="bytes") as advance:
        result = load_csv(
            file,
            settings,
            target=target,
            layout=layout,
            mapping=mapping,
            force=force,
            seed=seed,
            progress=advance,
        )
    _print_load(result)


def _print_load(result: object) -> None:
    status = getattr(result, "status", "")
    if status == "skipped_duplicate":
        out.print(
            f"{result.source_file}: already loaded as batch {result.batch_id} "
            "(same sha256); nothing added. Use --force to replace it."
        )
        return
    out.print(
        f"Loaded {result.source_file} ({result.layout} layout) as batch {result.batch_id}",
        soft_wrap=True,
    )
    table = Table(title="Reconciliation")
    table.add_column("Rows")
    table.add_column("Count", justify="right")
    table.add_row("rows in file", f"{result.rows_in_file:,}")
    table.add_row("loaded", f"{result.rows_loaded:,}")
    table.add_row("quarantined", f"{result.rows_quarantined:,}")
    for reason, count in sorted(result.quarantined_by_reason.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    out.print(table)
    balanced = result.rows_in_file == result.rows_loaded + result.rows_quarantined
    out.print(
        f"{result.rows_in_file:,} = {result.rows_loaded:,} + {result.rows_quarantined:,} "
        f"({'balanced' if balanced else 'NOT BALANCED'}); status: {status}"
    )


@load_app.command("firehose")
def load_firehose_command(
    directory: Annotated[
        Path | None,
        typer.Argument(help="Delivery directory to read (default: data/landing/firehose)."),
    ] = None,
    target: TargetOption = "duckdb",
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Land new Firehose-format delivery objects in raw.survey_events.

    Each object is loaded once, in its own transaction, with an audit row; malformed records go
    to raw.quarantine with the object key and byte offset. Rerunning loads only what is new.
    """
    from ingestion.firehose import LocalDirectory
    from ingestion.load_firehose import load_firehose

    settings = _settings()
    destination = None
    if directory is not None:
        if not directory.is_dir():
            raise ContrailError(f"{directory}: no such directory")
        destination = LocalDirectory(directory)
    reporter = RichReporter()
    with reporter.step("Loading delivery objects", None, unit="bytes") as advance:
        result = load_firehose(
            settings, destination=destination, target=target, seed=seed, progress=advance
        )
    table = Table(title="Delivery objects")
    table.add_column("Measure")
    table.add_column("Count", justify="right")
    table.add_row("objects loaded", f"{len(result.objects):,}")
    table.add_row("objects already loaded", f"{result.skipped:,}")
    table.add_row("records received", f"{result.records:,}")
    table.add_row("loaded", f"{result.loaded:,}")
    table.add_row("quarantined", f"{result.quarantined:,}")
    for reason, count in result.quarantined_by_reason.items():
        table.add_row(f"  {reason}", f"{count:,}")
    out.print(table)
    out.print(
        f"{result.records:,} = {result.loaded:,} + {result.quarantined:,} "
        f"({'balanced' if result.balanced else 'NOT BALANCED'}) in {result.seconds:.1f}s"
    )


@stream_app.command("replay")
def replay_command(
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Replay the rows of this export.")
    ] = None,
    synthetic: Annotated[
        bool, typer.Option("--synthetic", help="Replay generated surveys instead of a CSV.")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Surveys per second (default: as fast as possible)."),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    rows: Annotated[
        int | None,
        typer.Option("--rows", help="Synthetic surveys to send (default: rate × duration)."),
    ] = None,
    to: Annotated[
        str, typer.Option("--to", help="api (POST to the ingestion API) or firehose-dir.")
    ] = "api",
    api_url: Annotated[
        str, typer.Option("--api-url", help="Base URL of the ingestion API.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", help="X-API-Key to send (default: first of CONTRAIL_API_KEYS)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Surveys per POST or buffer write (1-500).")
    ] = 100,
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Turn survey rows into live events: batched POSTs to the API, or straight into the
    delivery directory. Reports sent, accepted and rejected counts."""
    from ingestion.replay import csv_surveys, replay, synthetic_surveys

    settings = _settings()
    if (csv is None) == (not synthetic):
        raise ContrailError("give exactly one source: --csv FILE or --synthetic")
    expected: int | None
    if synthetic:
        if rows is None and (rate is None or duration is None):
            raise ContrailError("--synthetic needs --rows, or both --rate and --duration")
        expected = rows if rows is not None else int(rate * duration)  # type: ignore[operator]
        surveys = synthetic_surveys(expected, seed)
    else:
        expected = None
        surveys = csv_surveys(csv, settings)  # type: ignore[arg-type]
    if api_key is None and settings.api_keys:
        api_key = settings.api_keys.split(",")[0].strip() or None
    result = replay(
        settings,
        surveys,
        to=to,  # type: ignore[arg-type]
        rate=rate,
        duration=duration,
        batch_size=batch_size,
        api_url=api_url,
        api_key=api_key,
        expected=expected,
        reporter=RichReporter(),
    )
    out.print(
        f"sent {result.sent:,} · accepted {result.accepted:,} · rejected {result.rejected:,} "
        f"in {result.seconds:.1f}s ({result.rate:,.0f}/s)"
    )


@stream_app.command("run")
def stream_run_command(
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between micro-batch cycles.")
    ] = 5.0,
    once: Annotated[
        bool,
        typer.Option("--once", help="Flush every buffer, run one cycle and exit."),
    ] = False,
    max_cycles: Annotated[
        int | None, typer.Option("--max-cycles", help="Stop after this many cycles.")
    ] = None,
    target: TargetOption = "duckdb",
    seed: SeedOption = DEFAULT_SEED,
) -> None:
    """Run micro-batches until interrupted: deliver orphaned buffers, load new delivery
    objects, build the stream selection with dbt kept warm in-process, publish the snapshot,
    and record freshness per cycle in mart_pipeline_health. Ctrl-C stops after the current step.
    """
    from ingestion.stream import CycleResult, run_stream

    def report(cycle: CycleResult) -> None:
        fresh = cycle.freshness
        freshness = (
            f" · freshness p50 {fresh.p50_s:.1f}s p95 {fresh.p95_s:.1f}s"
            if fresh.p50_s is not None and fresh.p95_s is not None
            else ""
        )
        out.print(
            f"{cycle.cycle_id}: {cycle.objects_loaded} objects, {cycle.records_loaded:,} "
            f"events loaded, {cycle.records_quarantined:,} quarantined · build {cycle.build} "
            f"{cycle.build_s:.1f}s · cycle {cycle.cycle_s:.1f}s{freshness}",
            soft_wrap=True,
        )

    run_stream(
        _settings(),
        interval_s=interval,
        once=once,
        max_cycles=max_cycles,
        target=target,
        seed=seed,
        on_cycle=report,
    )


@stream_app.command("demo")
def stream_demo_command(
    rate: Annotated[float, typer.Option("--rate", help="Surveys per second to post.")] = 200.0,
    duration: Annotated[float, typer.Option("--duration", help="Seconds of replay.")] = 30.0,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between micro-batch cycles.")
    ] = 5.0,
) -> None:
    """Start the ingestion API (no auth, loopback only) and the micro-batch runner, replay
    synthetic surveys into the API, wait until they are visible in the snapshot, then stop
    both cleanly and print the headline numbers."""
    from ingestion.demo import stream_demo
    from ingestion.summary import read_headline

    settings = _settings()
    result = stream_demo(
        settings, rate=rate, duration=duration, interval_s=interval, reporter=RichReporter()
    )
    out.print(
        f"posted {result.replay.sent:,} · accepted {result.replay.accepted:,} · "
        f"visible in the snapshot {result.visible:,}"
    )
    if result.visible:
        _print_headline(read_headline(settings), {})


@app.command()
def build(target: TargetOption = "duckdb") -> None:
    """Run `dbt build` (models, seeds, data and unit tests); on DuckDB, publish the snapshot.

    A failing test publishes nothing and leaves the previous snapshot in place.
    """
    from ingestion.pipeline import build as build_marts

    outcome = build_marts(_settings(), target=target, reporter=RichReporter())
    result = outcome.result
    out.print(
        f"dbt build on {target}: {result.count('success')} built, {result.count('pass')} tests "
        f"passed, {result.count('warn')} warnings in {result.seconds:.1f}s"
    )
    if outcome.snapshot:
        out.print(f"Published snapshot: {outcome.snapshot}", soft_wrap=True)


@app.command()
def run(
    csv: Annotated[
        Path | None, typer.Option("--csv", help="Load this export instead of generating one.")
    ] = None,
    rows: Annotated[
        int, typer.Option("--rows", help="How many surveys to generate (without --csv).")
    ] = DEFAULT_ROWS,
    seed: SeedOption = DEFAULT_SEED,
    no_serve: Annotated[
        bool, typer.Option("--no-serve", help="Exit after the pipeline instead of serving.")
    ] = False,
    target: TargetOption = "duckdb",
) -> None:
    """Run the whole batch pipeline: generate (unless --csv), load, build, publish, summarise."""
    from ingestion.pipeline import run_pipeline
    from ingestion.summary import read_headline

    settings = _settings()
    result = run_pipeline(
        settings, csv=csv, rows=rows, seed=seed, target=target, reporter=RichReporter()
    )
    _print_load(result.load)
    headline = read_headline(settings, target=target)
    _print_headline(headline, result.seconds)
    if not no_serve:
        _serve_dashboard(settings, "127.0.0.1", 8501)


def _serve_dashboard(settings: Settings, host: str, port: int) -> None:
    from dashboards.serve import serve_dashboard, url

    out.print(
        f"Dashboards: [bold]{url(host, port)}[/bold] (Ctrl+C stops the server)", soft_wrap=True
    )
    status = serve_dashboard(settings, host=host, port=port)
    if status not in (0, -2, -15):
        raise ContrailError(f"the dashboard server exited with status {status}")


@app.command("dashboard")
def dashboard_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8501,
) -> None:
    """Serve the dashboards (Streamlit) over the published snapshot until interrupted.

    Pages read data/serving/warehouse.duckdb read-only, never the file dbt writes, so builds
    and stream cycles can run while they are open; each interaction sees the newest snapshot.
    Without a snapshot the pages say how to build one (`contrail run`).
    """
    _serve_dashboard(_settings(), host, port)


def _print_headline(headline: object, seconds: dict[str, float]) -> None:
    table = Table(title="Contrail: passenger satisfaction")
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    table.add_row("responses", f"{headline.responses:,}")
    table.add_row(
        "satisfied",
        f"{headline.satisfied:,} ({headline.satisfaction_rate:.1%})",
    )
    for label, scores in (("strongest", headline.strongest), ("weakest", headline.weakest)):
        for rank, score in enumerate(scores, start=1):
            table.add_row(
                f"{label} #{rank}: {score.service}",
                f"mean {score.mean_rating:.2f} · importance {score.importance:.2f}",
            )
    table.caption = " · ".join(f"{name} {value:.1f}s" for name, value in seconds.items())
    out.print(table)
    if headline.snapshot:
        out.print(f"Published snapshot: {headline.snapshot}", soft_wrap=True)


@app.command()
def bench(
    rows: Annotated[
        int | None,
        typer.Option(
            "--rows",
            help=f"Surveys to generate, enrich, load and build [default: {DEFAULT_ROWS:,}; "
            "1,000,000 with --dashboards].",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON on stdout.")
    ] = False,
    stream: Annotated[
        bool,
        typer.Option("--stream", help="Benchmark the stream path (API, delivery loader) instead."),
    ] = False,
    dashboards: Annotated[
        bool,
        typer.Option(
            "--dashboards",
            help="Time every dashboard page's first view on a snapshot of --rows surveys, "
            "against its queries alone.",
        ),
    ] = False,
) -> None:
    """Measure generate, enrich (against naive per-row Faker), load, dbt build and the pipeline;
    with --stream, the ingestion API and the delivery-object loader; with --dashboards, each
    dashboard page's render time."""
    figures: Any
    if stream and dashboards:
        raise typer.BadParameter("choose one of --stream and --dashboards", param_hint="--stream")
    if stream:
        from ingestion.bench_stream import run_stream_benchmarks

        figures = run_stream_benchmarks(_settings(), reporter=RichReporter())
    elif dashboards:
        from dashboards.bench import TARGET_ROWS, run_dashboard_benchmarks

        figures = run_dashboard_benchmarks(
            _settings(), rows=rows or TARGET_ROWS, reporter=RichReporter()
        )
    else:
        from ingestion.bench import run_benchmarks

        figures = run_benchmarks(_settings(), rows=rows or DEFAULT_ROWS, reporter=RichReporter())
    if as_json:
        print(json.dumps(figures.as_dict(), indent=2))
    else:
        out.print(figures.table())


@app.command("serve-api")
def serve_api_command(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0 picks a free one).")] = 8000,
    buffer_interval: Annotated[
        float,
        typer.Option(
            "--buffer-interval",
            help="Seconds a survey may wait in the buffer before delivery (0 = deliver at once).",
        ),
    ] = 60.0,
    buffer_size: Annotated[
        float, typer.Option("--buffer-size", help="Deliver once the buffer holds this many MiB.")
    ] = 5.0,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            "--api-keys-file",
            help="File of accepted X-API-Key values, one a line (also CONTRAIL_API_KEYS_FILE).",
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option("--insecure-no-auth", help="Accept requests without an API key (local only)."),
    ] = False,
    max_body: Annotated[
        float, typer.Option("--max-body", help="Largest request body accepted, in MiB.")
    ] = 1.0,
) -> None:
    """Serve the survey ingestion API (POST /v1/surveys) until interrupted.

    Accepted surveys are journaled before the 202, buffered like Kinesis Firehose, and
    delivered as files under data/landing/firehose/ for `contrail load firehose`. Keys come
    from CONTRAIL_API_KEYS (comma-separated) or a keys file; without any it refuses to start
    unless --insecure-no-auth is given.
    """
    from ingestion.api.auth import read_api_keys
    from ingestion.api_server import serve_api

    settings = _settings()
    keys = read_api_keys(settings.api_keys, api_keys_file or settings.api_keys_file)
    serve_api(
        settings,
        host=host,
        port=port,
        buffer_interval_s=buffer_interval,
        buffer_size_mib=buffer_size,
        api_keys=keys,
        insecure_no_auth=insecure_no_auth,
        max_body_mib=max_body,
    )


def main() -> None:
    """Console-script entry point: one-line errors, no traceback, exit status 1."""
    try:
        app()
    except ContrailError as exc:
        first, *rest = str(exc).splitlines() or [""]
        print(f"contrail: error: {first}", file=sys.stderr)
        for line in rest:
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("contrail: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
