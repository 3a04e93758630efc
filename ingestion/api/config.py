"""The API's own settings: limits, keys and timings, passed in by whoever starts it."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class ApiConfig:
    """Limits and authentication of the ingestion API.

    With no ``api_keys`` the API refuses to start unless ``allow_no_auth`` is set explicitly
    (``--insecure-no-auth``): an open write endpoint is never the default.
    """

    api_keys: frozenset[str] = frozenset()
    allow_no_auth: bool = False
    max_body_bytes: int = 1 * MIB
    max_batch: int = 500
    # Recent idempotency keys remembered in memory; older retries fall back on staging's
    # event_id deduplication (the event_id is derived from the key, so it is the same).
    idempotency_capacity: int = 100_000
    # How often the background task asks the buffer to flush what is due.
    flush_poll_s: float = 0.2
