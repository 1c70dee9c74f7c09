"""Waiting on background work in tests: a bound, never an assertion about speed.

The one way the suite waits: ``wait_for`` polls a condition and fails loudly, naming what it
waited for, how long, and the last value seen (and, given a ``process``, fails at once when that
process exits first, with ``detail()`` — its stderr, say). No test sleeps a fixed time to prove
that something did not happen: it waits for the event that would have made it happen.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    what: str,
    *,
    timeout: float,
    poll: float = 0.02,
    process: subprocess.Popen[Any] | None = None,
    detail: Callable[[], str] | None = None,
) -> T:
    """The first truthy value of ``condition()``; AssertionError naming ``what`` after
    ``timeout`` s, or as soon as ``process`` (when given) has exited."""
    started = time.monotonic()
    while True:
        value = condition()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"{what}: the process exited ({process.returncode}) first"
                + (f"\n{detail()}" if detail else "")
            )
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"not reached in {timeout:g} s: {what} (last value {value!r})"
                + (f"\n{detail()}" if detail else "")
            )
        time.sleep(poll)
