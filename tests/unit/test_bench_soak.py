"""bench/soak's arithmetic: the flatness checks and the 30-day projection, on made-up samples."""

from __future__ import annotations

from typing import Any

from bench.soak_measure import check_flatness, project


def sample(
    minute: int, commits: int, *, meta: float, meta_json: float, rss: float
) -> dict[str, Any]:
    """One minute: `predictions` (and its stats table, committed as often) with ``commits``."""
    table = {
        "commits": commits,
        "metadata_json_bytes": meta_json,
        "metadata_files": 3 * commits,
        "metadata_bytes": meta,
        "data_files": commits,
        "data_bytes": 200.0 * 100 * commits,  # 100 rows of 200 bytes a commit
    }
    tables = {"predictions": table, "prediction_stats": dict(table, data_bytes=0.0)}
    return {
        "minute": minute,
        "elapsed_s": 60.0 * minute,
        "rows": 100 * commits,
        "tables": tables,
        **{m: sum(t[m] for t in tables.values()) for m in ("metadata_files", "metadata_bytes")},
        **{m: sum(t[m] for t in tables.values()) for m in ("data_files", "data_bytes")},
        "commit_ms": {"p50": 50.0, "p99": None},
        "rss_mb": {"server": rss, "writer": 200.0},
    }


def test_linear_growth_projects_per_commit_and_data_per_row() -> None:
    # 100 commits a minute; every commit adds 1 kB of metadata, the current file stays 10 kB.
    samples = [sample(m, 100 * m, meta=1e3 * 100 * m, meta_json=1e4, rss=300) for m in (1, 2, 3, 4)]
    p = project(samples, default_interval_s=2.0, rate=50.0, days=30)
    assert p["log_commits"] == 30 * 86_400 / 2
    # Both log tables: what they hold now plus 1 kB for each of the 1.296M default commits.
    assert p["metadata_bytes"] == 2 * (4e5 + 1e3 * 1_296_000)
    assert p["predictions_metadata_json_bytes"] == 1e4
    assert p["predictions_bytes_per_row"] == 200.0
    assert p["tables"]["predictions"]["data_bytes"] == 200.0 * 50 * 30 * 86_400
    assert p["metadata_bytes_accelerating"] is None
    checks = {c["measure"]: c["result"] for c in check_flatness(samples)}
    assert checks["metadata file KB predictions"] == "PASS"
    assert checks["commit p50 ms"] == "PASS"
    assert checks["commit p99 ms"] == "n/a"
    assert checks["metadata files"] == "FAIL"  # 600 -> 1,200 files: not flat
    assert checks["rows grow"] == "PASS"


def test_metadata_growing_with_the_square_of_the_commits_is_flagged() -> None:
    # Every old metadata file kept, each 1 kB larger than the last: the folder holds n^2/2 kB.
    samples = [
        sample(m, 100 * m, meta=1e3 * (100 * m) ** 2 / 2, meta_json=1e3 * 100 * m, rss=300 * m)
        for m in range(1, 8)
    ]
    p = project(samples, default_interval_s=2.0, rate=50.0)
    n = p["log_commits"]
    assert p["metadata_bytes_accelerating"] is not None
    assert p["metadata_bytes_accelerating"] > 10 * p["metadata_bytes"]
    # Within 10% of the exact n^2/2 kB (both tables) at 700 + 1.296M commits.
    exact = 2 * 1e3 * (700 + n) ** 2 / 2
    assert abs(p["metadata_bytes_accelerating"] - exact) / exact < 0.1
    checks = {c["measure"]: c["result"] for c in check_flatness(samples)}
    assert checks["metadata file KB predictions"] == "FAIL"
    assert checks["server RSS MB"] == "FAIL"


def test_the_online_states_figures_are_checked_for_flatness() -> None:
    # keys and events plateau (the bound works); the Redis id index grows with every minute
    samples = [sample(m, 100 * m, meta=1e5, meta_json=1e4, rss=300) for m in (1, 2, 3, 4, 5)]
    for m, s in enumerate(samples, 1):
        s["online"] = {
            "online keys": 3000.0 + (0 if m > 1 else -1000),
            "online events": 9000.0,
            "redis id entries": 6000.0 * m,
        }
    checks = {c["measure"]: c for c in check_flatness(samples)}
    assert checks["online keys"]["result"] == "PASS"
    assert (checks["online keys"]["second"], checks["online keys"]["last"]) == (3000.0, 3000.0)
    assert checks["online events"]["result"] == "PASS"
    assert checks["redis id entries"]["result"] == "FAIL"  # 12,000 -> 30,000
    # a demo-spec soak has no online state: no such checks, nothing made up
    del samples[1]["online"], samples[-1]["online"]
    assert not [c for c in check_flatness(samples) if c["measure"].startswith(("online", "redis"))]


def test_the_online_figures_are_read_from_the_servers_metrics() -> None:
    from bench.soak_cards import online_line
    from bench.soak_measure import parse_metrics

    from fraudops.features.online import OnlineHeld
    from fraudops.inference_log.base import ProducerStats
    from fraudops.serving.metrics import ServerMetrics

    held = OnlineHeld(keys=3000, events=9012, ids=4500)
    text = ServerMetrics(lambda: ProducerStats(backend="spool"), read_online=lambda: held)
    online = parse_metrics(text.render().decode())["online"]
    assert online == {"online keys": 3000.0, "online events": 9012.0, "online ids": 4500.0}
    assert "keys 3,000" in online_line(online)
    no_state = ServerMetrics(lambda: ProducerStats(backend="spool"), read_online=lambda: None)
    assert parse_metrics(no_state.render().decode())["online"] == {}
    assert online_line({}) == ""
