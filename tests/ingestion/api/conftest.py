"""Fixtures of the API tests: a valid survey, a recording buffer, and a client on the app."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingestion.api import ApiConfig, create_app
from ingestion.config import Settings
from ingestion.schema import RATING_COLUMNS

API_KEY = "test-key-1"
AUTH = {"X-API-Key": API_KEY}


def make_survey(**overrides: Any) -> dict[str, Any]:
    """A valid survey as a client posts it: answers only, no enrichment."""
    survey: dict[str, Any] = {
        "satisfaction": "satisfied",
        "gender": "Female",
        "customer_type": "Loyal Customer",
        "age": 41,
        "type_of_travel": "Business travel",
        "travel_class": "Business",
        "flight_distance": 1234,
        "departure_delay_minutes": 5,
        "arrival_delay_minutes": 0,
        **dict.fromkeys(RATING_COLUMNS, 4),
    }
    survey.update(overrides)
    return survey


class RecordingBuffer:
    """Keeps what ``add`` got; ``fail`` makes ``add`` raise like a full disk."""

    def __init__(self) -> None:
        self.adds: list[list[bytes]] = []
        self.fail: Exception | None = None
        self.flush_due_calls = 0
        self.flushes = 0
        self._lock = threading.Lock()

    @property
    def records(self) -> list[bytes]:
        return [record for add in self.adds for record in add]

    @property
    def buffered_records(self) -> int:
        return len(self.records)

    @property
    def buffered_bytes(self) -> int:
        return sum(map(len, self.records))

    def add(self, records: list[bytes]) -> list[str]:
        if self.fail is not None:
            raise self.fail
        with self._lock:
            self.adds.append(list(records))
        return []

    def flush_due(self) -> list[str]:
        self.flush_due_calls += 1
        return []

    def flush(self) -> list[str]:
        self.flushes += 1
        return []


@pytest.fixture
def buffer() -> RecordingBuffer:
    return RecordingBuffer()


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(settings: Settings, buffer: RecordingBuffer) -> Iterator[ClientFactory]:
    """Build a client on a fresh app; keyword arguments override ApiConfig fields."""
    clients: list[TestClient] = []

    def make(**config: Any) -> TestClient:
        api_config = ApiConfig(**{"api_keys": frozenset({API_KEY, "test-key-2"}), **config})
        client = TestClient(create_app(settings, api_config, buffer))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client()
