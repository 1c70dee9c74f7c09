"""bench/soak --spec cards: raw transactions served for minutes, the online state's size sampled.

The soak serves `cards_soak`: the built-in `cards` with every window and delay shrunk from days
to seconds (1d -> 15 s, 7d -> 30 s, 30d -> 60 s; the terminal windows' 7d delay -> 15 s),
``features.late_arrival_s`` 15 s and ``features.key_ttl_s`` 90 s, so that within a minute or two
the state holds all it will ever hold: events older than the retention (75 s of lookback + 15 s
of lateness) are trimmed, and a card or terminal idle 90 s (+ the 15 s of lateness) is
forgotten. The traffic keeps
bringing new ones, as real traffic does: each transaction's card is drawn from a sliding range
of ACTIVE_CARDS that moves on by NEW_CARDS_PER_S (terminals likewise), so over a run many
times more cards are seen than any minute holds. Without the bound, keys and events grow with
the run; with it, they plateau from the second minute.

The model is trained on generated raw transactions (`fraudops data generate --raw`) through the
same spec; with windows of seconds on data of days its features are poor, so the gate is off for
the soak's home (it measures costs, not quality).

Each minute, besides bench/soak's figures: the online state from /metrics (fraudops_online_keys,
_events, _ids: the memory store's state, the Redis store's mirror); with Redis, ``INFO memory``'s
used_memory (the whole instance: other users of that Redis show there), and under the store's
prefix (fresh per run, deleted after): the keys (logs, id index hashes), the id index's entries
and the MEMORY USAGE of them all.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

SPEC_NAME = "cards_soak"
DURATIONS = {"1d": "15s", "7d": "30s", "30d": "60s"}
KEY_TTL_S = 90.0  # = the retention: a key is forgotten only once no window needs it
LATE_S = 15.0
ACTIVE_CARDS, NEW_CARDS_PER_S = 3000, 10.0
ACTIVE_TERMINALS, NEW_TERMINALS_PER_S = 1000, 3.0
FRAUD_SHARE = 0.02  # the labeller's ground truth for a share of the traffic
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def soak_spec() -> dict[str, Any]:
    """`cards` with its windows and delays in seconds (names say so: cust_nb_tx_15s, ...)."""
    from fraudops.spec import CARDS

    spec = CARDS.model_dump(mode="json", exclude_none=True, exclude={"name"})
    spec["description"] = "cards with windows of seconds (bench/soak --spec cards)"
    derived = []
    for entry in spec["derived"]:
        entry = dict(entry)
        for days, seconds in DURATIONS.items():
            if entry.get("window") == days:
                entry["window"] = seconds
                entry["name"] = entry["name"].removesuffix(f"_{days}") + f"_{seconds}"
        if "delay" in entry:
            entry["delay"] = DURATIONS["1d"]
        derived.append(entry)
    spec["derived"] = derived
    return spec


def cards_env(home: Path, store: str, redis_url: str) -> dict[str, str]:
    """The settings of a cards soak (added to bench/soak's), its config file written next to
    ``home``; with Redis a fresh key prefix."""
    import yaml

    config = home.parent / "soak-cards.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({"specs": {SPEC_NAME: soak_spec()}}))
    env = {
        "FRAUDOPS_CONFIG": str(config),
        "FRAUDOPS_SPEC": SPEC_NAME,
        "FRAUDOPS_FEATURES__ONLINE_STORE": store,
        "FRAUDOPS_FEATURES__KEY_TTL_S": str(KEY_TTL_S),
        "FRAUDOPS_FEATURES__LATE_ARRIVAL_S": str(LATE_S),
        # The soak measures costs: a model of any quality will do (see the module docstring).
        "FRAUDOPS_GATE__MIN_ROC_AUC": "0",
        "FRAUDOPS_GATE__MIN_PR_AUC": "0",
    }
    if store == "redis":
        env["FRAUDOPS_FEATURES__REDIS_URL"] = redis_url
        env["FRAUDOPS_FEATURES__REDIS_PREFIX"] = f"fraudops-soak:{uuid.uuid4().hex[:8]}"
    return env


def redis_prefix(env: dict[str, str]) -> str | None:
    """The store's keys' prefix (its setting plus the spec), None on the memory store."""
    if env.get("FRAUDOPS_FEATURES__ONLINE_STORE") != "redis":
        return None
    return f"{env['FRAUDOPS_FEATURES__REDIS_PREFIX']}:{SPEC_NAME}"


def prepare_cards_home(home: Path, env: dict[str, str], bin_dir: Path, days: int) -> None:
    """Generated raw transactions loaded into the soak spec's lake, a model trained on them."""

    def run(*args: str) -> Any:
        done = subprocess.run(
            [str(bin_dir / "fraudops"), *args, "--json"], env=env, check=True, capture_output=True
        )
        return json.loads(done.stdout)

    raw = home / "data" / "raw.parquet"
    raw.parent.mkdir(parents=True, exist_ok=True)
    sizes = ["--customers", "2000", "--terminals", "2000", "--days", str(days), "--seed", "7"]
    run("data", "generate", "--raw", *sizes, "--out", str(raw))
    run("lake", "init", "--spec", SPEC_NAME)
    run("lake", "load", str(raw), "--spec", SPEC_NAME)
    trained = run("train", "--spec", SPEC_NAME)
    print(f"{SPEC_NAME}: trained, ROC-AUC {trained['metrics']['roc_auc']:.3f}", file=sys.stderr)


def raw_bodies(
    minute: int, n: int, rate: float, started: float, first: float, rng: random.Random, seed: int
) -> tuple[list[dict[str, Any]], list[str], list[int]]:
    """A minute's raw transactions, each timed when it is due to be sent (``started`` plus
    its place at ``rate``), its card and terminal drawn from the ranges active at that time
    (``first``: the traffic's start); the ids and the ground truth, for the labeller."""
    import datetime as dt

    bodies, ids, truth = [], [], []
    for i in range(n):
        at = started + i / rate
        age = at - first
        card = int(age * NEW_CARDS_PER_S) + rng.randrange(ACTIVE_CARDS)
        terminal = int(age * NEW_TERMINALS_PER_S) + rng.randrange(ACTIVE_TERMINALS)
        tx_id = f"tx-soak-{seed}-{minute}-{i}"
        bodies.append(
            {
                "transaction_id": tx_id,
                "tx_time": dt.datetime.fromtimestamp(at, dt.UTC).isoformat(),
                "customer_id": f"soak-c{card}",
                "terminal_id": f"soak-t{terminal}",
                "amount": round(rng.lognormvariate(3.5, 1.0), 2),
            }
        )
        ids.append(tx_id)
        truth.append(int(rng.random() < FRAUD_SHARE))
    return bodies, ids, truth


def raw_traffic_worker(
    url: str, rate: float, minutes: int, seed: int, concurrency: int, out: Any
) -> None:
    """Child process: bench/soak's traffic_worker for raw transactions (raw_bodies)."""
    import time

    from bench.soak_traffic import send_minutes

    rng = random.Random(seed)
    first = time.time()
    send_minutes(
        url,
        rate,
        minutes,
        concurrency,
        out,
        lambda minute, n: raw_bodies(minute, n, rate, time.time(), first, rng, seed),
    )


class RedisWatch:
    """The Redis side of the online state, one prefix (the store's)."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)
        self.prefix = prefix

    def names(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"{self.prefix}:*", count=1_000))

    def sample(self) -> dict[str, float]:
        """used_memory (the instance), and under the prefix: keys, logs, id index hashes, id
        index entries, MEMORY USAGE (MB)."""
        names = self.names()
        logs = [n for n in names if b":log:" in n]
        hashes = [n for n in names if b":ids:" in n]
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.memory_usage(name)
        for name in hashes:
            pipe.hlen(name)
        replies = pipe.execute()
        usage = sum(int(r or 0) for r in replies[: len(names)])
        entries = sum(int(r or 0) for r in replies[len(names) :])
        used = int(self.client.info("memory")["used_memory"])
        return {
            "redis used_memory MB": round(used / 2**20, 2),
            "redis prefix MB": round(usage / 2**20, 2),
            "redis prefix keys": float(len(names)),
            "redis logs": float(len(logs)),
            "redis id hashes": float(len(hashes)),
            "redis id entries": float(entries),
        }

    def drop(self) -> int:
        """Delete every key under the prefix (the run's state); how many."""
        names = self.names()
        for start in range(0, len(names), 1_000):
            self.client.delete(*names[start : start + 1_000])
        self.client.close()
        return len(names)


ONLINE_METRICS = {
    "fraudops_online_keys": "online keys",
    "fraudops_online_events": "online events",
    "fraudops_online_ids": "online ids",
}


def online_line(online: dict[str, float]) -> str:
    """The minute's online figures, compact (bench/soak prints it under the minute's row)."""
    if not online:
        return ""
    short = {
        "online keys": "keys",
        "online events": "events",
        "online ids": "ids",
        "redis used_memory MB": "redis used MB",
        "redis prefix MB": "prefix MB",
        "redis logs": "logs",
        "redis id hashes": "id hashes",
        "redis id entries": "id entries",
    }
    cells = [
        f"{short[k]} {v:,.2f}" if "MB" in k else f"{short[k]} {v:,.0f}"
        for k, v in online.items()
        if k in short
    ]
    return "    online: " + ", ".join(cells)
