"""Fixtures for the dashboard tests: one published snapshot built by the real pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ingestion.config import Settings
from ingestion.pipeline import run_pipeline

DASHBOARD_ROWS = 6_000
DASHBOARD_SEED = 7


@pytest.fixture(scope="session")
def published_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose data directory holds a snapshot the batch pipeline published.

    Built once per session (generate, load, dbt build, source freshness, publish); tests
    read it and must not modify it. Copy it first when a test needs to swap or remove it.
    """
    data_dir = tmp_path_factory.mktemp("dashboard") / "data"
    settings = replace(Settings.from_env({}), data_dir=data_dir)
    run_pipeline(settings, rows=DASHBOARD_ROWS, seed=DASHBOARD_SEED)
    return settings


@pytest.fixture
def dashboard_env(
    published_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Point the app (which reads Settings.from_env) at the published snapshot."""
    monkeypatch.setenv("CONTRAIL_DATA_DIR", str(published_settings.data_dir))
    yield published_settings


@pytest.fixture
def empty_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A data directory with no snapshot at all."""
    settings = replace(Settings.from_env({}), data_dir=tmp_path / "data")
    monkeypatch.setenv("CONTRAIL_DATA_DIR", str(settings.data_dir))
    yield settings
