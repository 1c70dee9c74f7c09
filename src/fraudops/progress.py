"""Step reporting for long work: services report steps, the CLI draws them with Rich in a
terminal and as plain lines (``LineReporter``, with a heartbeat) anywhere else.

Services take a ``Reporter`` and wrap each step in ``with reporter.step("Training"):``; every
reporter records the wall time of each step (the benchmarks and the pipeline's run log read it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any


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


HEARTBEAT_SECONDS = 5.0  # outside a terminal, the longest silence while a step runs (CI logs)


class LineReporter(Reporter):
    """Plain lines for a pipe, a file or a CI log, where a live bar cannot redraw: a line when a
    step starts and ends, and while one runs a heartbeat line (step, done/total, elapsed) from a
    background thread whenever ``every`` seconds passed without a line. Use it as a context
    manager (the thread runs inside it)."""

    def __init__(self, stream: IO[str], every: float = HEARTBEAT_SECONDS) -> None:
        super().__init__()
        self._stream = stream
        self._every = every
        self._lock = threading.Lock()
        self._active: list[_LineTask] = []  # innermost last
        self._last_line = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LineReporter:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="progress-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _start(self, description: str, total: float | None) -> _LineTask:
        task = _LineTask(description, total)
        with self._lock:
            self._active.append(task)
            self._write(f"{description} ...")
        return task

    def _advance(self, task: Any, amount: float) -> None:
        task.done += amount

    def _set_total(self, task: Any, total: float) -> None:
        task.total = total

    def _finish(self, task: Any, description: str) -> None:
        with self._lock:
            if task in self._active:
                self._active.remove(task)
            self._write(f"{description}: done in {task.elapsed():.1f} s")

    def _beat(self) -> None:
        while not self._stop.wait(min(1.0, self._every / 4)):
            with self._lock:
                if self._active and time.monotonic() - self._last_line >= self._every:
                    self._write(self._active[-1].status())

    def _write(self, line: str) -> None:  # under the lock
        self._stream.write(line + "\n")
        self._stream.flush()
        self._last_line = time.monotonic()


class _LineTask:
    def __init__(self, description: str, total: float | None) -> None:
        self.description = description
        self.total = total
        self.done = 0.0
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def status(self) -> str:
        done = f" {self.done:g}/{self.total:g}" if self.total else ""
        return f"{self.description}:{done} ... {self.elapsed():.0f} s"
