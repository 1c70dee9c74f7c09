"""The champion lock: a file lock under home on a SQLite registry, a PostgreSQL advisory lock
on a PostgreSQL one; another process holding it makes a move wait, then give up clearly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudops.config import Settings, load_settings
from fraudops.registry.locks import ChampionLockTimeout, advisory_key, champion_lock, lock_kind

# Holds the champion lock of model "m" until its stdin closes.
_HOLDER = """
import sys
from fraudops.config import load_settings
from fraudops.registry.locks import champion_lock

settings = load_settings(home=sys.argv[1], mlflow={"tracking_uri": sys.argv[2] or None})
with champion_lock(settings, "m"):
    print("held", flush=True)
    sys.stdin.read()
"""


def _held_elsewhere(settings: Settings, uri: str = "") -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(settings.home_dir), uri],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def _contended(settings: Settings) -> None:
    holder = _held_elsewhere(settings, settings.mlflow.tracking_uri or "")
    try:
        started = time.monotonic()
        with (
            pytest.raises(ChampionLockTimeout, match="another champion move of 'm'"),
            champion_lock(settings, "m", timeout_s=0.5),
        ):
            pass
        assert 0.4 < time.monotonic() - started < 10
        with champion_lock(settings, "other-model", timeout_s=0.5):
            pass  # a lock per model: another model is not held up
    finally:
        _release(holder)
    with champion_lock(settings, "m", timeout_s=5), champion_lock(settings, "m", timeout_s=0.1):
        pass  # free again, and re-entrant within a process


def test_a_sqlite_registry_locks_a_file_under_home(settings: Settings) -> None:
    assert lock_kind(settings) == "file"
    _contended(settings)
    assert (settings.home_dir / "locks" / "champion-m.lock").is_file()


@pytest.mark.integration
def test_a_postgres_registry_takes_an_advisory_lock(home: Path, pg_database: str) -> None:
    settings = load_settings(home=home, mlflow={"tracking_uri": pg_database})
    assert lock_kind(settings) == "postgres-advisory"
    assert advisory_key("m") == advisory_key("m") != advisory_key("n")
    _contended(settings)
    assert not (home / "locks").exists()  # the database holds it, shared by every machine
