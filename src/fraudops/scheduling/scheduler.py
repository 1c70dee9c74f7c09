"""`fraudops scheduler`: the configured jobs on their cron schedules, in one process.

Each job is a fraudops command (e.g. ``monitor run``) run in a child process on an APScheduler
cron trigger (UTC): a job that crashes or leaks memory does not take the scheduler with it, and
what it prints lands in the scheduler's log. Runs are recorded in ``<home>/scheduler/state.json``
(last start, end, exit code). A run missed while the scheduler was down is caught up once at
start — not once per missed slot — because a daily drift check that was down for a week needs
one fresh check, not seven stale ones. SIGTERM/SIGINT stop it gracefully: the running job is
allowed to finish.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudops.config import Settings
from fraudops.errors import ConfigError

log = logging.getLogger(__name__)

MAINTENANCE_JOB = "maintenance"
MAINTENANCE_COMMAND = ("lake", "maintain", "--scheduled")


@dataclass
class JobRun:
    job: str
    started_at: str
    finished_at: str
    exit_code: int
    seconds: float
    catch_up: bool
    output_tail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    cron: str
    command: tuple[str, ...]
    every_s: float | None = None  # an interval instead of the cron (the maintenance job)

    def trigger(self) -> Any:
        from apscheduler.triggers.cron import CronTrigger

        if self.every_s is not None:
            from apscheduler.triggers.interval import IntervalTrigger

            return IntervalTrigger(seconds=self.every_s, timezone=UTC)

        fields = self.cron.split()
        try:
            if len(fields) == 5:
                return CronTrigger.from_crontab(self.cron, timezone=UTC)
            if len(fields) == 6:  # with seconds first, for short test schedules
                second, minute, hour, day, month, weekday = fields
                return CronTrigger(
                    second=second,
                    minute=minute,
                    hour=hour,
                    day=day,
                    month=month,
                    day_of_week=weekday,
                    timezone=UTC,
                )
        except ValueError as exc:
            raise ConfigError(
                f"scheduler job {self.name!r}: bad cron {self.cron!r}: {exc}"
            ) from None
        raise ConfigError(
            f"scheduler job {self.name!r}: cron {self.cron!r} needs 5 fields "
            "(minute hour day month weekday) or 6 (seconds first)"
        )

    def next_after(self, moment: datetime) -> datetime | None:
        fire: datetime | None = self.trigger().get_next_fire_time(None, moment)
        return fire


def configured_jobs(settings: Settings) -> list[ScheduledJob]:
    jobs = []
    for name, job in settings.scheduler.jobs.items():
        if not job.enabled:
            continue
        cron = job.cron or (settings.monitoring.schedule if name == "drift_check" else None)
        if not cron:
            raise ConfigError(f"scheduler job {name!r} has no cron expression")
        scheduled = ScheduledJob(name=name, cron=cron, command=tuple(job.command))
        scheduled.trigger()  # fail on a bad expression at start, not at 2 am
        jobs.append(scheduled)
    if settings.maintenance.enabled and MAINTENANCE_JOB not in settings.scheduler.jobs:
        # The lake maintenance of the tables no writer maintains, and old reports.
        every = settings.maintenance.interval_s
        jobs.append(ScheduledJob(MAINTENANCE_JOB, f"every {every:g} s", MAINTENANCE_COMMAND, every))
    return jobs


class JobState:
    """Last runs per job, in a small JSON file written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
            return data
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError:
            log.warning("scheduler state %s is unreadable: starting afresh", self.path)
            return {}

    def update(self, job: str, **values: Any) -> None:
        with self._lock:
            data = self.read()
            data.setdefault(job, {}).update(values)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2))
            os.replace(tmp, self.path)


class Scheduler:
    def __init__(self, settings: Settings, *, config_file: Path | None = None) -> None:
        self.settings = settings
        self.jobs = {job.name: job for job in configured_jobs(settings)}
        self.state = JobState(settings.home_dir / "scheduler" / "state.json")
        self.timeout_s = settings.scheduler.job_timeout_s
        self.config_file = config_file
        self._scheduler: Any = None

    # ---- one run -----------------------------------------------------------------------------

    def run_job(self, name: str, *, catch_up: bool = False) -> JobRun:
        job = self.jobs[name]
        started = datetime.now(UTC)
        self.state.update(name, last_started_at=started.isoformat(), running=True)
        env = dict(os.environ)
        if self.config_file is not None:
            env["FRAUDOPS_CONFIG"] = str(self.config_file)
        env["FRAUDOPS_HOME"] = str(self.settings.home_dir)
        clock = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "fraudops.cli", *job.command],
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
            code, output = done.returncode, (done.stdout + done.stderr)
        except subprocess.TimeoutExpired as exc:
            code, output = -1, f"timed out after {self.timeout_s} s: {exc}"
        except OSError as exc:
            code, output = -1, f"could not start: {exc}"
        finished = datetime.now(UTC)
        run = JobRun(
            job=name,
            started_at=started.isoformat(),
            finished_at=finished.isoformat(),
            exit_code=code,
            seconds=round(time.perf_counter() - clock, 3),
            catch_up=catch_up,
            output_tail=output[-2000:],
        )
        self.state.update(
            name,
            last_finished_at=run.finished_at,
            last_exit_code=code,
            last_seconds=run.seconds,
            running=False,
            runs=self.state.read().get(name, {}).get("runs", 0) + 1,
        )
        level = logging.INFO if code == 0 else logging.ERROR
        log.log(
            level,
            "job %s%s exited %s after %.1f s",
            name,
            " (catch-up)" if catch_up else "",
            code,
            run.seconds,
        )
        return run

    # ---- missed runs -----------------------------------------------------------------------

    def missed(self, now: datetime | None = None) -> list[str]:
        """Jobs whose scheduled time passed since their last start (while nothing ran them)."""
        now = now or datetime.now(UTC)
        state = self.state.read()
        late = []
        for name, job in self.jobs.items():
            if job.every_s is not None:
                continue  # an interval job runs at its next interval: nothing to catch up
            last = state.get(name, {}).get("last_started_at")
            if last is None:
                # Never ran here: the schedule starts now, nothing to catch up.
                self.state.update(name, last_started_at=now.isoformat(), runs=0)
                continue
            due = job.next_after(datetime.fromisoformat(last))
            if due is not None and due <= now:
                late.append(name)
        return late

    def catch_up(self, now: datetime | None = None) -> list[JobRun]:
        return [self.run_job(name, catch_up=True) for name in self.missed(now)]

    # ---- the loop --------------------------------------------------------------------------

    def describe(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        state = self.state.read()
        rows = []
        for name, job in self.jobs.items():
            upcoming = job.next_after(now)
            rows.append(
                {
                    "job": name,
                    "cron": job.cron,
                    "command": " ".join(job.command),
                    "next_run": upcoming.isoformat() if upcoming else None,
                    **{k: v for k, v in state.get(name, {}).items() if k.startswith("last_")},
                }
            )
        return rows

    def run_forever(self) -> None:
        from apscheduler.schedulers.blocking import BlockingScheduler

        if not self.jobs:
            raise ConfigError("no scheduler job is enabled (scheduler.jobs)")
        self.catch_up()
        scheduler = BlockingScheduler(timezone=UTC)
        for name, job in self.jobs.items():
            scheduler.add_job(
                self.run_job,
                job.trigger(),
                args=[name],
                id=name,
                name=name,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
        self._scheduler = scheduler

        def stop(signum: int, frame: Any) -> None:
            log.info("stopping the scheduler (signal %s); a running job may finish", signum)
            # shutdown(wait=True) from the signal handler would block the loop it must stop.
            threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        log.info("scheduler running %d job(s): %s", len(self.jobs), ", ".join(self.jobs))
        scheduler.start()
