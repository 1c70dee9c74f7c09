"""The scheduler: cron jobs as child processes, one catch-up for missed runs, graceful stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fraudops.config import load_settings
from fraudops.errors import ConfigError
from fraudops.scheduling.scheduler import Scheduler
from tests.serving_support import env_for
from tests.waiting import wait_for

QUICK = ["--version"]


def _scheduler(home: Path, cron: str = "0 2 * * *") -> Scheduler:
    settings = load_settings(
        home=home, scheduler={"jobs": {"drift_check": {"cron": cron, "command": QUICK}}}
    )
    return Scheduler(settings)


def test_a_missed_daily_run_is_caught_up_once(home: Path) -> None:
    jobs = _scheduler(home)
    now = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
    assert jobs.missed(now) == []  # first start: the schedule begins now
    # Down for three days: three 02:00 slots passed, one catch-up run.
    jobs.state.update("drift_check", last_started_at=(now - timedelta(days=3)).isoformat())
    runs = jobs.catch_up(now)
    assert [(r.job, r.catch_up, r.exit_code) for r in runs] == [("drift_check", True, 0)]
    assert "fraudops" in runs[0].output_tail  # the command's own output was kept
    assert jobs.missed(datetime.now(UTC)) == []
    assert jobs.state.read()["drift_check"]["runs"] == 1


def test_a_run_just_before_the_next_slot_is_not_missed(home: Path) -> None:
    jobs = _scheduler(home)
    jobs.state.update("drift_check", last_started_at="2026-05-10T02:00:05+00:00")
    assert jobs.missed(datetime(2026, 5, 11, 1, 59, tzinfo=UTC)) == []
    assert jobs.missed(datetime(2026, 5, 11, 2, 0, 1, tzinfo=UTC)) == ["drift_check"]


def test_a_bad_cron_is_refused_at_start(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"drift_check.*cron"):
        _scheduler(home, cron="every day")


def test_the_process_runs_jobs_on_schedule_and_stops_gracefully(tmp_path: Path) -> None:
    home = tmp_path / "home"
    config = tmp_path / "fraudops.yaml"
    config.write_text(
        "scheduler:\n  jobs:\n    drift_check:\n"
        "      cron: '*/2 * * * * *'\n      command: [config, show, --json]\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "fraudops.cli", "--config", str(config), "scheduler"],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    state = home / "scheduler" / "state.json"

    def runs() -> int:
        if not state.exists():
            return 0
        return int(json.loads(state.read_text()).get("drift_check", {}).get("runs", 0))

    try:
        wait_for(lambda: runs() >= 2, "two scheduled runs", timeout=60, poll=0.5, process=process)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode()[-2000:]
    final = json.loads(state.read_text())["drift_check"]
    assert final["last_exit_code"] == 0 and final["running"] is False
