"""A small keep-alive HTTP/1.1 load generator for benchmarking the ingestion API on loopback.

A general-purpose client (httpx) spends more CPU per request than the server it measures on
this 2-core machine; this one writes prepared request bytes and reads each response by its
Content-Length. Every run is bounded by a request count and a time limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class LoadResult:
    requests: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def request_bytes(url: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    parts = urlsplit(url)
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.hostname}:{parts.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    claim: list[int],
    deadline: float,
    result: LoadResult,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            index = claim[0]
            if index >= len(requests):
                return
            claim[0] = index + 1
            writer.write(requests[index])
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            result.requests += 1
            result.statuses[status] += 1
    finally:
        writer.close()


async def _run(url: str, requests: list[bytes], concurrency: int, seconds: float) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    result = LoadResult()
    claim = [0]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(_connection(host, port, requests, claim, deadline, result) for _ in range(concurrency))
    )
    result.seconds = time.monotonic() - started
    return result


def post_all(url: str, requests: list[bytes], *, concurrency: int, seconds: float) -> LoadResult:
    """Send prepared requests over ``concurrency`` keep-alive connections until they run out or
    ``seconds`` pass; returns the count, time and status codes."""
    if not url.startswith("http://") or urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError(f"the load generator only targets this machine's loopback, not {url}")
    return asyncio.run(_run(url, requests, concurrency, seconds))
