"""A bounded in-memory map of recent idempotency keys to the ids they were given.

It stops a retry from being buffered twice while the key is remembered. Older retries (and
retries after a restart) get the same event_id again, since it is derived from the key, and
staging's deduplication on event_id drops the second copy.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    event_id: str
    survey_id: str
    fingerprint: str | None
    # Resolves when the record is journaled (or fails with the journal's error).
    journaled: asyncio.Future[None]


class IdempotencyCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def put(self, key: str, entry: Entry) -> None:
        self._entries[key] = entry
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def discard(self, key: str, entry: Entry) -> None:
        """Forget ``key`` if it still maps to ``entry`` (its journaling failed)."""
        if self._entries.get(key) is entry:
            del self._entries[key]
