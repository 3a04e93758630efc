"""Group commit: records of concurrent requests are journaled together.

The buffer's ``add`` fsyncs its journal before returning, and a request may be answered 202
only after that. One worker thread calls ``add``; while it runs, records of newly arriving
requests queue up and go into the next ``add`` together, so one fsync covers many requests
and the event loop never blocks on the disk.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from ingestion.api.buffer import RecordBuffer
from ingestion.api.metrics import Metrics


class GroupCommitter:
    def __init__(self, buffer: RecordBuffer, metrics: Metrics) -> None:
        self._buffer = buffer
        self._metrics = metrics
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="contrail-journal")
        self._pending: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    def submit(self, records: list[bytes], future: asyncio.Future[None]) -> None:
        """Queue records for journaling; ``future`` resolves once they are durable."""
        self._pending.append((records, future))
        if not self._draining:
            self._draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain())

    def _add(self, records: list[bytes]) -> None:
        started = time.perf_counter()
        keys = self._buffer.add(records)
        self._metrics.observe_journal(time.perf_counter() - started, len(keys))

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                group, self._pending = self._pending, []
                records = [record for records, _ in group for record in records]
                try:
                    await loop.run_in_executor(self._executor, self._add, records)
                except Exception as exc:
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._draining = False
        self._task: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Wait until every queued record is journaled."""
        while self._draining or self._pending:
            await asyncio.sleep(0.005)
