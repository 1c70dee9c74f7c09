"""`fraudops log-writer`: drain the inference-log spool into the lake's `predictions` table."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated, Any

import typer

from fraudops.cli._common import JsonOption, SpecOption, emit, err, kv_table, out, settings_from


def log_writer(
    ctx: typer.Context,
    spec: SpecOption = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Drain everything ready now (dead servers' segments included), print a "
            "summary and exit, instead of running until SIGTERM/SIGINT.",
        ),
    ] = False,
    parent_pid: Annotated[
        int | None,
        typer.Option("--parent-pid", hidden=True, help="Exit (after a final drain) when it dies."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Commit the inference-log spool to `predictions`, exactly once per served prediction."""
    from fraudops.inference_log.writer import SpoolWriter  # pyiceberg: ~0.5 s, not for --help

    writer = SpoolWriter(settings_from(ctx), spec)
    if once:
        try:
            report = writer.drain()
        finally:
            writer.close()
        pending_bytes, pending_segments = writer.directory.usage()
        result: dict[str, Any] = {
            "spec": writer.spec_name,
            "spool_dir": str(writer.spool_dir),
            **report.to_dict(),
            "pending_bytes": pending_bytes,
            "pending_segments": pending_segments,
        }
        emit(
            result,
            as_json,
            lambda: out.print(
                kv_table(f"Spool drained into {writer.spec_name}.predictions", result)
            ),
        )
        if report.commit_failures:
            err.print(f"[red]the lake did not take the spool:[/] {report.last_error}")
            raise typer.Exit(1)
        return

    _log_to_stderr()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    err.print(f"log writer: draining {writer.spool_dir} into {writer.spec_name}.predictions")
    totals = writer.run(stop, parent_pid=parent_pid)
    if as_json:
        emit({"spec": writer.spec_name, **totals.to_dict()}, True, lambda: None)
    else:
        err.print(
            f"log writer stopped: {totals.written} row(s) written, {totals.duplicates} "
            f"duplicate(s) skipped, {totals.rejected} rejected, {totals.segments} segment(s)"
            + (f"; last error: {totals.last_error}" if totals.last_error else "")
        )


def _log_to_stderr() -> None:
    # A long-running writer's commits and failures are its log; stdout stays for --json.
    logger = logging.getLogger("fraudops")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
