"""The `contrail` console script, run as a user runs it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

CONTRAIL = [sys.executable, "-m", "ingestion.cli"]


def _run(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONTRAIL_DATA_DIR": str(data_dir), "COLUMNS": "120"}
    return subprocess.run(
        [*CONTRAIL, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["generate"],
        ["load"],
        ["load", "csv"],
        ["load", "firehose"],
        ["build"],
        ["run"],
        ["bench"],
        ["serve-api"],
        ["stream"],
        ["stream", "replay"],
    ],
)
def test_every_command_explains_itself(command: list[str], tmp_path: Path) -> None:
    result = _run([*command, "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert len(result.stdout.split()) > 20  # more than a bare usage line


def test_missing_file_fails_with_one_line_reason(tmp_path: Path) -> None:
    result = _run(["load", "csv", str(tmp_path / "nope.csv")], tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"contrail: error: {tmp_path / 'nope.csv'}: no such file"
    ]
    assert "Traceback" not in result.stderr


def test_unknown_target_is_refused(tmp_path: Path) -> None:
    result = _run(["build", "--target", "oracle"], tmp_path)
    assert result.returncode == 1
    assert "unknown target 'oracle'" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_refuses_two_suites_at_once(tmp_path: Path) -> None:
    result = _run(["bench", "--stream", "--dashboards"], tmp_path)
    assert result.returncode == 2
    assert "choose one of --stream and --dashboards" in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_writes_the_requested_rows(tmp_path: Path) -> None:
    out = tmp_path / "surveys.csv"
    result = _run(["generate", "--rows", "1234", "--seed", "7", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == 1 + 1234


@pytest.mark.slow
def test_run_prints_the_headline_and_publishes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = _run(["run", "--no-serve", "--rows", "3000", "--seed", "5"], data_dir)
    assert result.returncode == 0, result.stderr + result.stdout

    generated = data_dir / "generated" / "surveys_3000_seed5.csv"
    with generated.open(newline="") as handle:
        satisfied = sum(row["satisfaction"] == "satisfied" for row in csv.DictReader(handle))
    assert "3,000" in result.stdout
    assert f"{satisfied:,} ({satisfied / 3000:.1%})" in result.stdout
    assert "strongest #3" in result.stdout and "weakest #3" in result.stdout
    assert f"Published snapshot: {data_dir / 'serving' / 'warehouse.duckdb'}" in result.stdout
    assert (data_dir / "serving" / "warehouse.duckdb").exists()
