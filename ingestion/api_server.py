"""Run the ingestion API on uvicorn (``contrail serve-api``), and write its OpenAPI spec."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ingestion.api.app import create_app
from ingestion.api.config import MIB, ApiConfig
from ingestion.config import Settings
from ingestion.errors import ContrailError

log = logging.getLogger("contrail.api")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
OPENAPI_PATH = Path("docs") / "openapi.json"


def default_journal_dir(settings: Settings) -> Path:
    """Where the API's delivery buffer journals accepted records until they are delivered."""
    return settings.data_dir / "journal" / "api"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ContrailError(
            f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port"
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_api(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    buffer_interval_s: float = 60.0,
    buffer_size_mib: float = 5.0,
    api_keys: Collection[str] = (),
    insecure_no_auth: bool = False,
    max_body_mib: float = 1.0,
    journal_dir: Path | None = None,
) -> None:
    """Serve the API until interrupted; accepted surveys go to the local Firehose directory.

    Refuses to start without API keys unless ``insecure_no_auth`` is set. Port 0 picks a free
    port; the address actually bound is printed at start-up. On shutdown (Ctrl-C, SIGTERM)
    everything buffered is delivered; after SIGKILL the journal keeps it for the next start.
    """
    import uvicorn

    from ingestion.firehose import DeliveryBuffer, DeliveryConfig, LocalDirectory

    if buffer_size_mib <= 0:
        raise ContrailError(f"--buffer-size {buffer_size_mib}: must be more than 0 MiB")
    if buffer_interval_s < 0:
        raise ContrailError(f"--buffer-interval {buffer_interval_s}: must be 0 or more seconds")
    if max_body_mib <= 0:
        raise ContrailError(f"body limit {max_body_mib} MiB: must be more than 0")
    api_config = ApiConfig(
        api_keys=frozenset(api_keys),
        allow_no_auth=insecure_no_auth,
        max_body_bytes=int(max_body_mib * MIB),
    )
    if not api_config.api_keys and not insecure_no_auth:
        create_app(settings, api_config, _NoBuffer())  # raises the explanation
    destination = LocalDirectory.for_settings(settings)
    config = DeliveryConfig(
        buffer_bytes=max(1, int(buffer_size_mib * MIB)), buffer_interval_s=buffer_interval_s
    )
    buffer = DeliveryBuffer(
        destination, config, journal_dir=journal_dir or default_journal_dir(settings)
    )
    try:
        app = create_app(settings, api_config, buffer)
        sock = _bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        print(f"Contrail API listening on http://{bound_host}:{bound_port}", flush=True)
        print(f"  delivery objects: {destination.root}", flush=True)
        if buffer.recovery.records:
            print(f"  recovered {buffer.recovery.records} journaled surveys", flush=True)
        if api_config.api_keys:
            print(f"  authentication: X-API-Key, {len(api_config.api_keys)} key(s)", flush=True)
        else:
            print(
                "  WARNING: authentication is OFF (--insecure-no-auth): anyone who can reach "
                "this address can post surveys",
                flush=True,
            )
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        )
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler
        # that was installed before it: make that one a no-op, so a SIGTERM ends in a clean
        # return (buffer delivered and closed) rather than death by signal.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _ignore_signal) if in_main else None
        try:
            server.run(sockets=[sock])
        finally:
            if in_main:
                signal.signal(signal.SIGTERM, previous)
            sock.close()
    finally:
        buffer.close()


def _ignore_signal(signum: int, frame: object) -> None:
    """Stands in for the default SIGTERM action once uvicorn has shut down."""


class _NoBuffer:
    buffered_records = 0
    buffered_bytes = 0

    def add(self, records: list[bytes]) -> list[str]:
        raise AssertionError("unused")

    def flush_due(self) -> list[str]:
        return []

    def flush(self) -> list[str]:
        return []


def openapi_spec() -> dict[str, Any]:
    """The API's OpenAPI document with the default limits (what docs/openapi.json holds)."""
    app = create_app(Settings(data_dir=Path("data")), ApiConfig(allow_no_auth=True), _NoBuffer())
    return app.openapi()


def openapi_text() -> str:
    return json.dumps(openapi_spec(), indent=2, sort_keys=False) + "\n"


def write_openapi(path: Path) -> Path:
    """Write the spec (``python -m ingestion.api_server``, run from the repository root)."""
    path.write_text(openapi_text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    from ingestion.config import REPO_ROOT

    print(write_openapi(REPO_ROOT / OPENAPI_PATH))
