"""Reading API keys and checking X-API-Key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.api.auth import ApiKeyAuth, read_api_keys
from ingestion.errors import ContrailError


def test_keys_from_env_value_and_file(tmp_path: Path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("# kiosks\nkiosk-a\n\n  kiosk-b  \n", encoding="utf-8")

    assert read_api_keys(" app-1, ,app-2 ", keys_file) == {"app-1", "app-2", "kiosk-a", "kiosk-b"}
    assert read_api_keys(None) == frozenset()
    assert read_api_keys("") == frozenset()


def test_bad_keys_file_names_file_and_line(tmp_path: Path):
    keys_file = tmp_path / "keys.txt"
    keys_file.write_text("good\nbad key\n", encoding="utf-8")
    with pytest.raises(ContrailError, match=r"keys.txt line 2: .*spaces"):
        read_api_keys(None, keys_file)
    with pytest.raises(ContrailError, match="no such API keys file"):
        read_api_keys(None, tmp_path / "absent.txt")


def test_check():
    auth = ApiKeyAuth(["alpha", "beta"])
    assert auth.check("alpha") is None
    assert auth.check("beta") is None
    assert "invalid" in (auth.check("alph") or "")
    assert "missing" in (auth.check(None) or "")
    assert ApiKeyAuth([]).check(None) is None
