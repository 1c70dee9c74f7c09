"""Step reporting for long work: services report steps, the CLI draws them with Rich.

Services take a ``Reporter`` and wrap each step in ``with reporter.step("Training"):``; every
reporter records the wall time of each step (the benchmarks and the pipeline's run log read it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StepHandle:
    """Handed to the body of a step so it can report finer-grained progress."""

    def __init__(self, reporter: Reporter, task: Any = None) -> None:
        self._reporter = reporter
        self._task = task

    def advance(self, amount: float = 1.0) -> None:
        self._reporter._advance(self._task, amount)

    def set_total(self, total: float) -> None:
        self._reporter._set_total(self._task, total)


class Reporter:
    """Records step timings and prints nothing: the default for library use and tests."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def step(self, description: str, total: float | None = None) -> Iterator[StepHandle]:
        task = self._start(description, total)
        started = time.perf_counter()
        try:
            yield StepHandle(self, task)
        finally:
            self.timings[description] = time.perf_counter() - started
            self._finish(task, description)

    # Hooks for a visual reporter.
    def _start(self, description: str, total: float | None) -> Any:
        return None

    def _advance(self, task: Any, amount: float) -> None:
        pass

    def _set_total(self, task: Any, total: float) -> None:
        pass

    def _finish(self, task: Any, description: str) -> None:
        pass
