"""What the API needs from the delivery buffer (``ingestion.firehose.DeliveryBuffer``)."""

from __future__ import annotations

from typing import Protocol


class RecordBuffer(Protocol):
    """A thread-safe buffer that journals records durably in ``add`` before it returns."""

    @property
    def buffered_records(self) -> int: ...

    @property
    def buffered_bytes(self) -> int: ...

    def add(self, records: list[bytes]) -> list[str]: ...

    def flush_due(self) -> list[str]: ...

    def flush(self) -> list[str]: ...
