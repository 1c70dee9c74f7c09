"""Progress outside a terminal: plain lines, and a heartbeat while a slow step runs."""

from __future__ import annotations

import io
import re
import time

from rich.console import Console

from fraudops.cli._common import RichReporter
from fraudops.progress import LineReporter

EVERY = 0.1  # the test's heartbeat period (the CLI's is HEARTBEAT_SECONDS)


def test_a_slow_step_prints_a_heartbeat_with_its_count_and_elapsed_time() -> None:
    stream = io.StringIO()
    with LineReporter(stream, every=EVERY) as progress:
        with progress.step("Slow step", total=10) as step:
            for _ in range(10):  # 1 s of "work", no line of its own
                time.sleep(EVERY)
                step.advance()
        with progress.step("Quick step"):
            pass
    lines = stream.getvalue().splitlines()
    assert lines[0] == "Slow step ..."
    beats = [line for line in lines if re.fullmatch(r"Slow step: \d+/10 \.\.\. \d+ s", line)]
    assert len(beats) >= 4, lines  # ~one per EVERY of silence over 1 s
    counts = [int(re.search(r": (\d+)/", line).group(1)) for line in beats]  # type: ignore[union-attr]
    assert counts == sorted(counts) and counts[-1] >= 5  # done/total moves on
    assert re.fullmatch(r"Slow step: done in \d+\.\d s", lines[len(beats) + 1]), lines
    # A step shorter than the period: its start and its end only.
    assert lines[-2:] == ["Quick step ...", "Quick step: done in 0.0 s"]


def test_the_cli_reporter_prints_lines_when_stderr_is_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = RichReporter(Console(file=stream, force_terminal=False))
    with progress, progress.step("Training", total=2) as step:
        step.advance(2)
    assert stream.getvalue().splitlines()[0] == "Training ..."
    assert "Training: done in" in stream.getvalue()
    assert progress.timings["Training"] >= 0
