"""Waiting on background work in tests: a bound, never an assertion about speed."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], bool], what: str, *, timeout: float, poll: float = 0.02
) -> None:
    """Return once ``condition()`` holds; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached: {what}")
        time.sleep(poll)
