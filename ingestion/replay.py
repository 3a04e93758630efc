"""Turn survey rows into live events: POSTs to the ingestion API, or straight into a
Firehose-format delivery buffer. Used by `contrail stream replay`, the stream demo and the
stream benchmarks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.events import envelope
from ingestion.progress import Reporter, SilentReporter

Destination = Literal["api", "firehose-dir"]
MAX_BATCH = 500


@dataclass(frozen=True)
class ReplayResult:
    sent: int
    accepted: int
    rejected: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def _surveys_from_table(table: pa.Table) -> list[dict[str, Any]]:
    """Canonical survey dicts without the NULL fields (a missing rating was not asked)."""
    return [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]


def synthetic_surveys(total: int, seed: int, chunk: int = 50_000) -> Iterator[dict[str, Any]]:
    """Surveys from the calibrated generator, ``total`` of them."""
    from ingestion.generate import generate_table

    made = 0
    index = 0
    while made < total:
        n = min(chunk, total - made)
        yield from _surveys_from_table(generate_table(n, seed=seed + index))
        made += n
        index += 1


def csv_surveys(path: Path, settings: Settings) -> Iterator[dict[str, Any]]:
    """The valid rows of a CSV export (any layout the loader reads), as canonical dicts.

    Rows the loader would quarantine are skipped here: replay sends what a client would.
    """
    from ingestion.load_csv import choose_layout
    from ingestion.reader import BlockReader, parse_header
    from ingestion.validate import BlockParser

    if not path.exists():
        raise ContrailError(f"{path}: no such file")
    with BlockReader(path, block_bytes=8 << 20) as blocks:
        header, header_bytes = parse_header(blocks.header_bytes, str(path))
        parser = BlockParser(choose_layout(header, "auto", None, str(path)), header_bytes)
        for buf, first_line in blocks:
            parsed = parser.parse(buf, first_line)
            if parsed.survey is None:
                continue
            survey = parsed.survey
            if parsed.good is not None:
                survey = survey.filter(pa.array(parsed.good))
            yield from _surveys_from_table(survey)


def _batches(surveys: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for survey in surveys:
        batch.append(survey)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class _ApiSink:
    """Posts JSON arrays to POST /v1/surveys and counts per-item outcomes."""

    def __init__(self, url: str, api_key: str | None) -> None:
        import httpx

        headers = {"content-type": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30.0)
        self.url = url

    def send(self, batch: list[dict[str, Any]]) -> tuple[int, int]:
        import httpx

        body = json.dumps(batch, default=str).encode()
        try:
            response = self.client.post("/v1/surveys", content=body)
        except httpx.HTTPError as exc:
            raise ContrailError(f"cannot reach the ingestion API at {self.url}: {exc}") from exc
        if response.status_code in (401, 413, 415):
            reason = response.json().get("errors", [{}])[0].get("reason", response.text)
            raise ContrailError(f"the API refused the batch ({response.status_code}): {reason}")
        payload = response.json()
        if "accepted" not in payload:
            return 0, len(batch)
        return int(payload["accepted"]), int(payload["rejected"])

    def finish(self) -> None:
        self.client.close()


class _BufferSink:
    """Writes envelopes straight into a delivery buffer on the local landing directory."""

    def __init__(self, settings: Settings, interval_s: float) -> None:
        from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory

        self.buffer = DeliveryBuffer(
            LocalDirectory.for_settings(settings),
            DeliveryConfig(buffer_interval_s=interval_s),
            journal_dir=settings.data_dir / "journal" / "replay",
        )

    def send(self, batch: list[dict[str, Any]]) -> tuple[int, int]:
        records = []
        for survey in batch:
            record = envelope(survey)
            record["survey"].setdefault("survey_id", f"SRV-{record['event_id'][:16]}")
            records.append(json.dumps(record, default=str).encode())
        self.buffer.add(records)
        self.buffer.flush_due()
        return len(records), 0

    def finish(self) -> None:
        self.buffer.flush()
        self.buffer.close()


def replay(
    settings: Settings,
    surveys: Iterator[dict[str, Any]],
    *,
    to: Destination = "api",
    rate: float | None = None,
    duration: float | None = None,
    batch_size: int = 100,
    api_url: str = "http://127.0.0.1:8000",
    api_key: str | None = None,
    buffer_interval_s: float = 1.0,
    expected: int | None = None,
    reporter: Reporter | None = None,
) -> ReplayResult:
    """Send surveys as events at about ``rate`` per second (as fast as possible when None),
    stopping after ``duration`` seconds or when the surveys run out."""
    if not 1 <= batch_size <= MAX_BATCH:
        raise ContrailError(f"--batch-size must be 1-{MAX_BATCH}, not {batch_size}")
    if rate is not None and rate <= 0:
        raise ContrailError(f"--rate must be positive, not {rate}")
    reporter = reporter or SilentReporter()
    sink: _ApiSink | _BufferSink
    if to == "api":
        sink = _ApiSink(api_url, api_key)
    elif to == "firehose-dir":
        sink = _BufferSink(settings, buffer_interval_s)
    else:
        raise ContrailError(f"unknown destination {to!r}: use api or firehose-dir")
    sent = accepted = rejected = 0
    started: float | None = None
    try:
        with reporter.step(f"Replaying to {to}", expected, unit="surveys") as advance:
            for batch in _batches(surveys, batch_size):
                # The clock starts at the first batch: preparing it (generating or reading the
                # first chunk of surveys) is neither sending time nor a reason to send less.
                if started is None:
                    started = time.monotonic()
                elapsed = time.monotonic() - started
                if duration is not None and elapsed >= duration:
                    break
                if rate is not None:
                    ahead = sent / rate - elapsed
                    if ahead > 0:
                        time.sleep(ahead)
                ok, bad = sink.send(batch)
                sent += len(batch)
                accepted += ok
                rejected += bad
                advance(len(batch))
    finally:
        sink.finish()
    seconds = 0.0 if started is None else time.monotonic() - started
    return ReplayResult(sent, accepted, rejected, seconds)
