"""API-key authentication: the ``X-API-Key`` header against the configured keys."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from pathlib import Path

from ingestion.errors import ContrailError

API_KEY_HEADER = "x-api-key"


def read_api_keys(env_value: str | None, keys_file: Path | None = None) -> frozenset[str]:
    """Keys from ``CONTRAIL_API_KEYS`` (comma-separated) and from a keys file (one per line).

    Blank entries and lines starting with ``#`` in the file are ignored.
    """
    keys = {key.strip() for key in (env_value or "").split(",") if key.strip()}
    if keys_file is not None:
        try:
            text = keys_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ContrailError(f"{keys_file}: no such API keys file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ContrailError(f"{keys_file}: cannot read the API keys file ({exc})") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            key = line.strip()
            if not key or key.startswith("#"):
                continue
            if any(ch.isspace() or ch == "," for ch in key):
                raise ContrailError(
                    f"{keys_file} line {number}: an API key may not contain spaces or commas"
                )
            keys.add(key)
    return frozenset(keys)


def _digest(key: str | bytes) -> bytes:
    raw = key.encode("utf-8", "surrogateescape") if isinstance(key, str) else key
    return hashlib.sha256(raw).digest()


class ApiKeyAuth:
    """Checks a presented key in time independent of how much of it matches a stored key."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = tuple(_digest(key) for key in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, presented: str | None) -> str | None:
        """None when the key is accepted; otherwise the reason for a 401."""
        if not self._digests:
            return None
        if not presented:
            return "missing API key: send it in the X-API-Key header"
        digest = _digest(presented)
        matched = False
        for stored in self._digests:
            matched |= hmac.compare_digest(digest, stored)
        return None if matched else "invalid API key (X-API-Key is not one of the configured keys)"
