"""Lake maintenance against a real lake (SQLite catalog, local warehouse): what it keeps, what it
removes, the same plan for --dry-run and the run, a writer racing it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from pyiceberg.table import TableProperties

from fraudops.aggregates import predictions as prediction_aggregates
from fraudops.aggregates.watermark import snapshot_key
from fraudops.lake import Lake
from fraudops.lake.maintenance import TableMaintenance, maintain, plan_table, watermark_key
from fraudops.lake.maintenance_auto import AutoMaintainer, prune_reports
from fraudops.lake.maintenance_files import ManifestCache
from fraudops.lake.maintenance_policy import MaintenancePolicy
from fraudops.lake.schemas import PREDICTIONS, TABLES
from fraudops.runtime import Runtime
from tests.maintenance_support import commit_batches, ids, lake_settings, rows, table_files


def stats_total(lake: Lake) -> int:
    return int(sum(lake.read("prediction_stats", ["n"])["n"].to_pylist()))


SMALL = MaintenancePolicy(
    keep_snapshots=5, grace_s=0, compact_min_files=4, target_file_bytes=1 << 20
)


def test_dry_run_and_the_run_carry_out_the_same_plan(home: Path) -> None:
    settings = lake_settings(home)
    n = commit_batches(settings, 20)
    now = time.time() + 1  # every file written is older than this
    with Lake.open(settings) as lake:
        dry = maintain(lake, [PREDICTIONS], SMALL, dry_run=True, now=now)[0]
        done = maintain(lake, [PREDICTIONS], SMALL, now=now)[0]
        assert dry.plan is not None and done.plan is not None
        assert done.plan.to_dict() == dry.plan.to_dict()  # one planner for both
        plan = done.plan
        assert len(plan.expire) == 15 and len(plan.compact) == 1 and plan.orphans
        assert done.errors == []
        assert done.snapshots_expired == 15
        assert done.data_files_rewritten == 20 and done.data_files_written == 1
        assert done.files_removed == len(plan.orphans) and done.files_after < done.files_before
        # The dry run changed nothing; the run left the newest snapshots, the compaction's last.
        table = lake.table(PREDICTIONS)
        assert len(table.metadata.snapshots) == 6
        assert dry.files_after == dry.files_before == done.files_before
    assert ids(settings) == [f"inf-{i:06d}" for i in range(n)]


def test_kept_what_readers_need_and_no_file_of_a_kept_snapshot_removed(home: Path) -> None:
    settings = lake_settings(home)
    grace = 1.5
    policy = MaintenancePolicy(
        keep_snapshots=1, grace_s=grace, compact_min_files=2, target_file_bytes=1 << 20
    )
    commit_batches(settings, 6)
    with Lake.open(settings) as lake:
        prediction_aggregates.refresh(lake)  # the watermark: the 6th snapshot
        table = lake.table(PREDICTIONS)
        watermark = table.current_snapshot().snapshot_id  # type: ignore[union-attr]
        stats = lake.table("prediction_stats").current_snapshot()
        summary = stats.summary.additional_properties  # type: ignore[union-attr]
        assert summary[watermark_key(PREDICTIONS)] == str(watermark)
        assert watermark_key(PREDICTIONS) == snapshot_key(PREDICTIONS)
    time.sleep(grace + 0.2)
    n = commit_batches(settings, 10, start=30)  # not folded in yet: pinned
    with Lake.open(settings) as lake:
        done = maintain(lake, [PREDICTIONS], policy)[0]
        assert done.errors == [] and done.data_files_rewritten == 16
        assert done.snapshots_expired == 5  # those before the watermark
        kept = {s.snapshot_id for s in lake.table(PREDICTIONS).metadata.snapshots}
        assert watermark in kept and len(kept) == 12
        # The aggregates catch up past the compaction: nothing folded twice, nothing lost.
        assert prediction_aggregates.refresh(lake).rows_folded == n - 30
        assert stats_total(lake) == n
    # A reader plans a scan; a commit replaces its snapshot; maintenance runs at once.
    reader = Lake.open(settings).table(PREDICTIONS)
    read_at, scan = reader.current_snapshot().snapshot_id, reader.scan()  # type: ignore[union-attr]
    n = commit_batches(settings, 1, start=n)
    with Lake.open(settings) as lake:
        prediction_aggregates.refresh(lake)
        maintain(lake, [PREDICTIONS], policy)
        assert read_at in {s.snapshot_id for s in lake.table(PREDICTIONS).metadata.snapshots}
    assert scan.to_arrow().num_rows == n - 5  # its files are all still there
    time.sleep(grace + 0.2)
    with Lake.open(settings) as lake:
        maintain(lake, [PREDICTIONS], policy)  # now the replaced snapshots and their files go
        table = lake.table(PREDICTIONS)
        assert len(table.metadata.snapshots) == 1
        live = {Path(t.file.file_path.removeprefix("file://")) for t in table.scan().plan_files()}
    files = table_files(settings)
    assert live <= set(files)
    assert sum(p.suffix == ".parquet" for p in files) == len(live)  # the rewritten ones went
    assert ids(settings) == sorted(f"inf-{i:06d}" for i in [*range(30), *range(30, n)])


def test_a_home_from_an_older_release_gets_the_properties(home: Path) -> None:
    settings = lake_settings(home)
    wanted = MaintenancePolicy.from_settings(settings).table_properties()
    with Lake.open(settings) as lake:
        for name in TABLES:
            assert wanted.items() <= lake.table(name).metadata.properties.items()
            with lake.table(name).transaction() as tx:  # as an older release left them
                tx.remove_properties(*wanted)
        assert lake.init_tables().properties_set == {name: sorted(wanted) for name in TABLES}
        assert lake.init_tables().properties_set == {}  # idempotent
        with lake.table(PREDICTIONS).transaction() as tx:
            tx.remove_properties(TableProperties.MANIFEST_MERGE_ENABLED)
        done = maintain(lake, [PREDICTIONS], MaintenancePolicy.from_settings(settings))[0]
        assert done.properties_set == [TableProperties.MANIFEST_MERGE_ENABLED]


def test_maintenance_racing_the_writer_never_loses_a_commit(home: Path) -> None:
    settings = lake_settings(home)
    commit_batches(settings, 8)
    stop = threading.Event()
    errors: list[BaseException] = []
    written = [40]

    def write() -> None:  # the log writer's loop: commit, fold into the aggregates
        from fraudops.inference_log.sink import PredictionSink

        try:
            with (
                PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink,
                Lake.open(settings) as lake,
            ):
                while not stop.is_set():
                    sink.commit(rows(written[0], 5))
                    written[0] += 5
                    prediction_aggregates.refresh(lake)
        except BaseException as exc:
            errors.append(exc)

    policy = MaintenancePolicy(
        keep_snapshots=3, grace_s=2, compact_min_files=3, target_file_bytes=1 << 20
    )
    thread = threading.Thread(target=write)
    thread.start()
    runs: list[TableMaintenance] = []
    try:
        with Lake.open(settings) as lake:
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline or len(runs) < 4:
                runs.extend(maintain(lake, [PREDICTIONS, "prediction_stats"], policy))
                time.sleep(0.3)
    finally:
        stop.set()
        thread.join(60)
    assert errors == []
    assert (
        sum(r.data_files_rewritten for r in runs) > 0 and sum(r.snapshots_expired for r in runs) > 0
    )
    assert ids(settings) == [f"inf-{i:06d}" for i in range(written[0])]
    with Lake.open(settings) as lake:
        prediction_aggregates.refresh(lake)
        assert stats_total(lake) == written[0]


def test_the_automatic_run_waits_its_interval_and_reports(home: Path) -> None:
    settings = lake_settings(home, interval_s=3600)
    commit_batches(settings, 2)
    auto = AutoMaintainer(settings, None, [PREDICTIONS], "log")
    lakes = Runtime(settings).lake_factory()
    assert auto.maybe_run(lakes) is None  # the clock starts: nothing yet
    assert auto.maybe_run(lakes) is None
    state = auto.state_file
    os.utime(state)  # keep the file; move its recorded time back
    state.write_text('{"last_run_at": %f}' % (time.time() - 3601))
    results = auto.maybe_run(lakes)
    assert results is not None and [r.table for r in results] == [PREDICTIONS]
    assert auto.runs == 1 and auto.last_run_at is not None
    assert auto.maybe_run(lakes) is None  # not due again
    off = AutoMaintainer(lake_settings(home, enabled=False), None, [PREDICTIONS], "off")
    assert off.maybe_run(lakes) is None and not off.state_file.exists()


def test_old_reports_are_removed_the_recent_kept(home: Path) -> None:
    settings = lake_settings(home, keep_reports_days=90)
    old, recent = (home / "reports" / "transactions30" / r for r in ("run-old", "run-new"))
    for run in (old, recent):
        run.mkdir(parents=True)
        (run / "drift_summary.json").write_text("{}")
    long_ago = time.time() - 91 * 86_400
    os.utime(old / "drift_summary.json", (long_ago, long_ago))
    assert prune_reports(settings) == [old]
    assert not old.exists() and recent.exists()


@pytest.mark.parametrize("grace_s", [3600.0])
def test_nothing_younger_than_the_grace_is_touched(home: Path, grace_s: float) -> None:
    settings = lake_settings(home)
    commit_batches(settings, 10)
    before = table_files(settings)
    (table_files(settings)[0].parent / "stray.parquet").write_bytes(b"a commit writing")
    policy = MaintenancePolicy(keep_snapshots=1, grace_s=grace_s, compact_min_files=100)
    with Lake.open(settings) as lake:
        plan = plan_table(lake, PREDICTIONS, policy)
        assert plan.expire == () and plan.orphans == ()
    assert set(before) <= set(table_files(settings))


def test_the_manifest_cache_keeps_only_what_the_kept_snapshots_need(home: Path) -> None:
    # A process maintaining a table for months reuses one cache: it must not grow with the
    # commits (it held every manifest ever read, with pyiceberg's DataFile objects, ~10 KB each).
    settings = lake_settings(home)
    policy = MaintenancePolicy(
        keep_snapshots=3, grace_s=0, compact_min_files=1000, target_file_bytes=1 << 20
    )
    cache = ManifestCache()
    n = 0
    with Lake.open(settings) as lake:
        for _ in range(4):
            n = commit_batches(settings, 6, start=n)
            done = maintain(lake, [PREDICTIONS], policy, now=time.time() + 1, cache=cache)[0]
            assert done.errors == [] and done.snapshots_expired >= 3
            table = lake.table(PREDICTIONS)
            kept = table.metadata.snapshots
            needed = {s.manifest_list for s in kept} | {
                m.manifest_path for s in kept for m in s.manifests(table.io)
            }
            # Exactly the kept snapshots' manifest lists and manifests, none of the expired.
            assert cache.size == len(needed)
    assert ids(settings) == [f"inf-{i:06d}" for i in range(n)]
