"""Run dbt in-process (dbtRunner) against a target, and report what it built and tested."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.config import TARGETS, Settings
from ingestion.errors import ContrailError

PROFILES_EXAMPLE = "profiles.yml.example"

# dbt result statuses that mean a node did not pass.
_FAILING = {"error", "fail", "runtime error"}


@dataclass(frozen=True)
class NodeOutcome:
    unique_id: str
    status: str
    message: str


@dataclass(frozen=True)
class BuildResult:
    target: str
    success: bool
    seconds: float
    outcomes: tuple[NodeOutcome, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> tuple[NodeOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status in _FAILING)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ContrailError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    return target


def prepare_profiles(settings: Settings) -> Path:
    """Copy profiles.yml.example to the data directory's dbt folder and return that folder.

    A user who keeps their own profiles.yml points DBT_PROFILES_DIR at it instead.
    """
    own = os.environ.get("DBT_PROFILES_DIR")
    if own:
        return Path(own)
    source = settings.repo_root / PROFILES_EXAMPLE
    if not source.exists():
        raise ContrailError(f"{source}: missing; it defines the dbt targets Contrail builds on")
    folder = settings.dbt_profiles_dir
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / "profiles.yml"
    if not destination.exists() or destination.read_bytes() != source.read_bytes():
        shutil.copyfile(source, destination)
    return folder


def dbt_args(command: str, settings: Settings, target: str, extra: Sequence[str] = ()) -> list[str]:
    """The argument list for one dbt command on our project, with paths under the data directory."""
    return [
        *command.split(),
        "--project-dir",
        str(settings.repo_root),
        "--profiles-dir",
        str(prepare_profiles(settings)),
        "--target",
        target,
        "--target-path",
        str(settings.dbt_target_dir),
        "--log-path",
        str(settings.data_dir / "dbt" / "logs"),
        *extra,
    ]


def invoke_dbt(
    command: str,
    settings: Settings,
    *,
    target: str = "duckdb",
    extra: Sequence[str] = (),
    on_node: Callable[[NodeOutcome], None] | None = None,
) -> BuildResult:
    """Run one dbt command in-process and return its outcome per node.

    ``on_node`` is called as each node finishes (for progress bars).
    """
    import time

    check_target(target)
    os.environ.update(settings.dbt_env())
    from dbt.cli.main import dbtRunner

    def callback(event: Any) -> None:
        if on_node is None or event.info.name != "NodeFinished":
            return
        info = event.data.node_info
        on_node(NodeOutcome(info.unique_id, info.node_status, ""))

    started = time.perf_counter()
    runner = dbtRunner(callbacks=[callback])
    result = runner.invoke(dbt_args(command, settings, target, ["--quiet", *extra]))
    seconds = time.perf_counter() - started
    if result.exception is not None:
        raise ContrailError(f"dbt {command} on {target} could not run: {result.exception}")
    outcomes: list[NodeOutcome] = []
    for node_result in getattr(result.result, "results", None) or []:
        outcomes.append(
            NodeOutcome(
                node_result.node.unique_id,
                str(getattr(node_result.status, "value", node_result.status)),
                (node_result.message or "").strip(),
            )
        )
    return BuildResult(target, bool(result.success), seconds, tuple(outcomes))


def describe_failures(result: BuildResult, limit: int = 5) -> str:
    """One line naming the failing nodes, for an error message."""
    failures = result.failures
    names = [f"{o.unique_id} ({o.status}: {o.message[:120]})" for o in failures[:limit]]
    more = f" and {len(failures) - limit} more" if len(failures) > limit else ""
    return "; ".join(names) + more if names else "see data/dbt/logs/dbt.log"
