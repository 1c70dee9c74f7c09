"""The lake folder moved away under a running `fraudops serve`, and back: never recreated.

Before issue 9 the log writer's implicit `lake init` created a new, empty catalog and tables
while the real lake was away, and committed the next predictions there: the history split in
two lakes. Now the server keeps answering, the spool keeps the records, /readyz and /metrics say
the lake is missing, and once the folder is back every answered prediction lands in the original
lake's `predictions`, exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fraudops.config import Settings
from fraudops.inference_log.spool_files import read_writer_status
from fraudops.lake import Lake
from tests.serving_support import (
    Server,
    get_json,
    logged,
    post_json,
    train_champion,
    transactions,
    wait_logged,
)
from tests.waiting import wait_for

FAST = {
    "FRAUDOPS_SERVING__SEAL_AGE_S": "0.1",
    "FRAUDOPS_SERVING__WRITER_BATCH_AGE_S": "0.2",
    "FRAUDOPS_SERVING__WRITER_RETRY_S": "0.2",
}
WAIT_S = 60.0


def answer(server: Server, bodies: list[dict[str, Any]]) -> list[str]:
    """Post each body; the inference ids of the answers (every one must be a 200)."""
    found = []
    for body in bodies:
        status, response = post_json(server.url + "/v1/predict", body)
        assert status == 200, response
        found.append(response["results"][0]["inference_id"])
    return found


def wait_until(condition: Callable[[], Any], what: str) -> Any:
    return wait_for(condition, what, timeout=WAIT_S, poll=0.2)


def writer_status(settings: Settings) -> dict[str, Any]:
    return read_writer_status(settings.spool_dir())


def metric(server: Server, name: str) -> float | None:
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_a_lake_moved_away_and_back_is_never_recreated(tmp_path: Path) -> None:
    settings = train_champion(tmp_path / "home", rows=5_000)
    home = settings.home_dir
    lake_dir = home / "lake"
    away = tmp_path / "lake-away"  # outside home: a second catalog under home would show
    with Lake.open(settings, "transactions30") as lake:
        table_uuid = lake.table_uuid("predictions")
    bodies = transactions(settings, 300)

    server = Server(home, **FAST).start()
    try:
        before = answer(server, bodies[:100])
        wait_logged(settings, set(before))

        os.rename(lake_dir, away)
        during = answer(server, bodies[100:200])  # answered: the spool keeps them
        _, ready = wait_until(
            lambda: (r := get_json(server.url + "/readyz"))[0] == 503 and r, "/readyz fails"
        )
        assert "catalog.db does not exist" in ready["reason"], ready
        assert wait_until(lambda: metric(server, "fraudops_lake_available") == 0.0, "gauge 0")
        # The writer's retries on the missing lake: each one is where a recreation would happen.
        failed = writer_status(settings).get("consecutive_failures", 0)
        wait_until(
            lambda: writer_status(settings).get("consecutive_failures", 0) >= failed + 3,
            "three more commits tried (and failed) while the lake is away",
        )
        assert writer_status(settings)["lake_state"] == "missing"
        assert not lake_dir.exists(), "the lake was recreated while it was away"

        os.rename(away, lake_dir)
        after = answer(server, bodies[200:300])
        wait_until(lambda: get_json(server.url + "/readyz")[0] == 200, "/readyz ok again")
        answered = set(before) | set(during) | set(after)
        wait_logged(settings, answered)
        assert metric(server, "fraudops_lake_available") == 1.0
    finally:
        server.stop()

    assert len(answered) == 300
    # One catalog, the original one: no second catalog file or table metadata anywhere.
    assert sorted(home.rglob("catalog.db*")) == [lake_dir / "catalog.db"]
    metadata = [p for p in home.rglob("*.metadata.json") if lake_dir not in p.parents]
    assert metadata == []
    with Lake.open(settings, "transactions30") as lake:
        assert lake.table_uuid("predictions") == table_uuid
    frame = logged(settings)
    assert frame["inference_id"].is_unique, "a prediction was committed twice"
    assert answered <= set(frame["inference_id"]), "an answered prediction is not in the lake"
    assert len(frame) == len(answered)  # and nothing else
