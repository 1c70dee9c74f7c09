"""`fraudops scheduler`: run the configured jobs on their cron schedules."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from fraudops.cli._common import (
    JsonOption,
    config_path,
    emit,
    err,
    out,
    records_table,
    settings_from,
)


def scheduler(
    ctx: typer.Context,
    list_jobs: Annotated[
        bool, typer.Option("--list", help="Show the jobs, their next and last runs, and exit.")
    ] = False,
    run_now: Annotated[
        str | None, typer.Option("--run-now", help="Run this job once now and exit.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the jobs of `scheduler.jobs` on their cron schedules (UTC) until SIGTERM/SIGINT.

    The drift check runs daily at 02:00 UTC by default (monitoring.schedule). A run missed while
    the scheduler was down is caught up once at start.
    """
    from fraudops.errors import ConfigError
    from fraudops.scheduling.scheduler import Scheduler

    settings = settings_from(ctx)
    jobs = Scheduler(settings, config_file=config_path(ctx))
    if list_jobs:
        rows = jobs.describe()

        def render() -> None:
            columns = ["job", "cron", "command", "next_run", "last_started_at", "last_exit_code"]
            out.print(records_table("Scheduled jobs (UTC)", rows, columns))

        emit(rows, as_json, render)
        return
    if run_now is not None:
        if run_now not in jobs.jobs:
            raise ConfigError(f"no job {run_now!r}: jobs are {', '.join(jobs.jobs) or 'none'}")
        run = jobs.run_job(run_now)
        emit(run.to_dict(), as_json, lambda: out.print(run.output_tail))
        raise typer.Exit(0 if run.exit_code == 0 else 1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    err.print(f"fraudops scheduler: {', '.join(jobs.jobs)} (Ctrl-C to stop)")
    jobs.run_forever()
