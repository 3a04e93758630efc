"""Benchmarks for the stream path (`contrail bench --stream`), each with a baseline measured in
the same run: for the API, a plain in-process call of its validator on the same bodies; for
a micro-batch cycle, a full `dbt build` on the same history."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.table import Table

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.loadgen import post_all, request_bytes
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


@dataclass(frozen=True)
class StreamBenchFigures:
    api_single_rps: float
    api_single_baseline_per_s: float
    api_batch_surveys_per_s: float
    api_batch_baseline_per_s: float
    firehose_load_records_per_s: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in asdict(self).items()}

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
        ]

    def table(self) -> Table:
        table = Table(title="Contrail stream benchmarks")
        for column in ("Measure", "Measured", "Target", "Met"):
            table.add_column(column)
        for measure, measured, target, met in self.checks():
            table.add_row(measure, measured, target, "[green]yes[/]" if met else "[red]no[/]")
        return table


def run_stream_benchmarks(
    settings: Settings, *, api_seconds: float = 10.0, seed: int = 42
) -> StreamBenchFigures:
    import shutil
    from dataclasses import replace

    scratch = settings.data_dir / "bench-stream"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        api = measure_api(scratch / "api", seconds=api_seconds, seed=seed)
        load_rate = measure_firehose_load(replace(settings, data_dir=scratch / "load"), seed=seed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return StreamBenchFigures(
        api_single_rps=api["api_single_rps"],
        api_single_baseline_per_s=api["api_single_baseline_per_s"],
        api_batch_surveys_per_s=api["api_batch_surveys_per_s"],
        api_batch_baseline_per_s=api["api_batch_baseline_per_s"],
        firehose_load_records_per_s=load_rate,
    )
