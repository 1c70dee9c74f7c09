"""/metrics carries the log writer's commit latency and the maintenance it runs, by the names
bench/soak.py reads."""

from __future__ import annotations

from fraudops.inference_log.base import ProducerStats
from fraudops.serving.metrics import ServerMetrics


def test_the_drainers_commits_and_maintenance_are_exposed() -> None:
    stats = ProducerStats(
        backend="spool",
        commits=12,
        commit_seconds_p50=0.05,
        commit_seconds_p99=0.25,
        maintenance_runs=3,
        maintenance_files_removed=41,
        maintenance_last_run_at=1_800_000_000.0,
    )
    text = ServerMetrics(lambda: stats).render().decode()
    for line in (
        'fraudops_log_commit_seconds{quantile="0.5"} 0.05',
        'fraudops_log_commit_seconds{quantile="0.99"} 0.25',
        "fraudops_log_commits_total 12.0",
        "fraudops_maintenance_runs_total 3.0",
        "fraudops_maintenance_files_removed_total 41.0",
        "fraudops_maintenance_last_run_timestamp_seconds 1.8e+09",
    ):
        assert line in text.splitlines(), line


def test_nothing_is_made_up_before_the_drainer_reported() -> None:
    text = ServerMetrics(lambda: ProducerStats(backend="spool")).render().decode()
    assert "fraudops_log_commit_seconds" not in text and "fraudops_maintenance" not in text


def test_the_online_states_size_is_exposed_when_there_is_one() -> None:
    from fraudops.features.online import OnlineHeld

    held: list[OnlineHeld | None] = [OnlineHeld(keys=3, events=7, ids=5)]
    metrics = ServerMetrics(lambda: ProducerStats(backend="spool"), read_online=lambda: held[0])
    lines = metrics.render().decode().splitlines()
    for line in (
        "fraudops_online_keys 3.0",
        "fraudops_online_events 7.0",
        "fraudops_online_ids 5.0",
    ):
        assert line in lines, line
    held[0] = OnlineHeld(keys=2, events=4, ids=None)  # Redis: the id index is not in-process
    text = metrics.render().decode()
    assert "fraudops_online_keys 2.0" in text.splitlines() and "fraudops_online_ids" not in text
    held[0] = None  # a spec without derived features: nothing made up
    assert "fraudops_online" not in metrics.render().decode()
