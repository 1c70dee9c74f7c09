"""Faults around lake maintenance and the log's commits: a process SIGKILLed during compaction
and during snapshot expiry, a full disk under a log commit."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fraudops.config import load_settings
from fraudops.inference_log.spool import Spool
from fraudops.inference_log.spool_files import read_writer_status
from fraudops.inference_log.writer import SpoolWriter
from fraudops.lake import Lake
from fraudops.lake.maintenance import maintain
from fraudops.lake.maintenance_files import ManifestCache, referenced_paths, stored_files
from fraudops.lake.maintenance_policy import MaintenancePolicy
from fraudops.runtime import Runtime
from fraudops.serving.lake_watch import LakeWatch
from tests import waiting
from tests.integration.test_inference_log_writer import FAST, lines
from tests.maintenance_support import commit_batches, ids, lake_settings
from tests.serving_support import env_for

REPO = Path(__file__).resolve().parents[2]
WAIT_S = 60.0


def _maintain_process(home: Path, **maintenance: Any) -> subprocess.Popen[bytes]:
    env = env_for(home, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    env.update({f"FRAUDOPS_MAINTENANCE__{k.upper()}": str(v) for k, v in maintenance.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "fraudops.cli", "lake", "maintain", "--table", "predictions"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill_when(process: subprocess.Popen[bytes], seen: Any) -> None:
    """SIGKILL ``process`` the moment ``seen()`` holds (it must not have finished first)."""
    waiting.wait_for(
        seen,
        "the moment to kill (the process must not finish first)",
        timeout=WAIT_S,
        poll=0.002,
        process=process,
        detail=lambda: process.stderr.read().decode()[-2000:],  # type: ignore[union-attr]
    )
    process.send_signal(signal.SIGKILL)
    process.wait(WAIT_S)


def _intact(home: Path, expected: int) -> None:
    """Every row once, the table readable; then a clean run leaves no unreferenced file."""
    settings = load_settings(home=home)
    assert ids(settings) == [f"inf-{i:06d}" for i in range(expected)]
    policy = MaintenancePolicy(keep_snapshots=1, grace_s=0, compact_min_files=2)
    with Lake.open(settings) as lake:
        [done] = maintain(lake, ["predictions"], policy, now=time.time() + 1)
        assert done.errors == []
        table = lake.table("predictions")
        assert {f.path for f in stored_files(table)} == referenced_paths(
            table, table.metadata.snapshots, ManifestCache()
        )
    assert ids(settings) == [f"inf-{i:06d}" for i in range(expected)]


def _data_dir(home: Path) -> Path:
    return home / "lake" / "warehouse" / "transactions30" / "predictions" / "data"


def test_sigkill_during_compaction_loses_and_duplicates_nothing(home: Path) -> None:
    settings = lake_settings(home)
    n = commit_batches(settings, 16)
    before = set(_data_dir(home).rglob("*.parquet"))
    # Small target files: the rewrite writes several, killed after the first one.
    process = _maintain_process(home, compact_min_files=2, target_file_mb=0.1, grace_s=0)
    _kill_when(process, lambda: set(_data_dir(home).rglob("*.parquet")) - before)
    _intact(home, n)


def test_sigkill_during_snapshot_expiry_loses_and_duplicates_nothing(home: Path) -> None:
    settings = lake_settings(home)
    n = commit_batches(settings, 12)
    metadata = _data_dir(home).parent / "metadata"
    before = set(metadata.glob("*.metadata.json"))
    process = _maintain_process(home, keep_snapshots=1, compact_min_files=1000, grace_s=0)
    _kill_when(process, lambda: set(metadata.glob("*.metadata.json")) - before)
    _intact(home, n)


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 16 MB tmpfs for the lake's warehouse (root can mount; skipped otherwise)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_a_log_commit(
    home: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(
        home=home, serving=FAST, lake={"warehouse": (small_disk / "warehouse").as_uri()}
    )
    with Lake.open(settings) as lake:
        lake.init()
    spool = Spool.from_settings(settings)
    writer, stop = (
        SpoolWriter(settings, open_lake=Runtime(settings).lake_factory()),
        threading.Event(),
    )
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    filler = small_disk / "filler"
    try:
        with spool.open():
            spool.append_many(lines(0, 20))
        thread.start()
        waiting.wait_for(lambda: len(ids(settings)) == 20, "first rows", timeout=WAIT_S)
        # The disk fills up: the next commits fail.
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
            except OSError:
                pass
        with caplog.at_level(logging.WARNING), spool.open():
            spool.append_many(lines(20, 30))
            waiting.wait_for(
                lambda: read_writer_status(settings.spool_dir()).get("lake_state") == "no_space",
                "the writer saw the full disk",
                timeout=WAIT_S,
            )
            health = LakeWatch(
                settings, settings.feature_spec(), lambda: Lake.open(settings)
            ).health(spool.stats())
        assert not health.ok and health.disk_full
        assert "disk is full" in (health.reason or "") and "No space left" in (health.reason or "")
        assert "THE LAKE'S DISK IS FULL" in caplog.text
        assert sum(1 for _ in settings.spool_dir().glob("*/seg-*")) >= 1  # the spool keeps them
        assert len(ids(settings)) == 20
        filler.unlink()  # space is back: everything lands, once
        waiting.wait_for(lambda: len(ids(settings)) == 50, "drained", timeout=WAIT_S)
    finally:
        stop.set()
        thread.join(WAIT_S)
    assert ids(settings) == [f"inf-{i:06d}" for i in range(50)]
    assert read_writer_status(settings.spool_dir())["lake_state"] == "ok"
