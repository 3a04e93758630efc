"""Progress reporting for long work: rich bars in the CLI, silence in library calls and tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Advance = Callable[[int], None]


class Reporter(Protocol):
    """Something that shows progress: ``with reporter.step("Loading", total) as advance: ...``."""

    def step(
        self, description: str, total: int | None, unit: str = "rows"
    ) -> AbstractContextManager[Advance]: ...


class SilentReporter:
    """Reports nothing (library calls, tests)."""

    @contextmanager
    def step(self, description: str, total: int | None, unit: str = "rows") -> Iterator[Advance]:
        yield lambda n: None


class RichReporter:
    """One rich progress bar per step, on stderr so stdout stays clean for --json."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def step(self, description: str, total: int | None, unit: str = "rows") -> Iterator[Advance]:
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        columns = (
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            count,
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)

            def advance(n: int) -> None:
                progress.advance(task, n)

            yield advance
            if total is not None:
                progress.update(task, completed=total)
