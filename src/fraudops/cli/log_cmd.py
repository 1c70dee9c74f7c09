"""`fraudops log-writer`: drain the inference-log spool into the lake's `predictions` table."""

from __future__ import annotations

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
    # pyiceberg (~0.5 s) comes with the writer: imported when the command runs, not for --help.
    from fraudops.log_writer import run_until_signalled, spool_writer
    from fraudops.runtime import Runtime
    from fraudops.serving.allocators import bound_allocators

    if not once:
        bound_allocators()  # a long-running process: freed memory goes back (see the module)

    with Runtime(settings_from(ctx), spec) as runtime:
        writer = spool_writer(runtime)
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

        err.print(f"log writer: draining {writer.spool_dir} into {writer.spec_name}.predictions")
        totals = run_until_signalled(writer, parent_pid)
    if as_json:
        emit({"spec": writer.spec_name, **totals.to_dict()}, True, lambda: None)
    else:
        err.print(
            f"log writer stopped: {totals.written} row(s) written, {totals.duplicates} "
            f"duplicate(s) skipped, {totals.rejected} rejected, {totals.segments} segment(s)"
            + (f"; last error: {totals.last_error}" if totals.last_error else "")
        )
