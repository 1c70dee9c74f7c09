"""What a log drainer does besides committing: timing its commits, and the lake's maintenance of
``predictions`` and ``prediction_stats`` between them (lake/maintenance_auto.py; subscribed to
the drainer's commits where the runtime is composed).

The spool writer puts ``status()`` in its status file, which the server reads for ``/metrics``
(``fraudops_log_commit_seconds``, ``fraudops_maintenance_*``): the writer is a child process.
"""

from __future__ import annotations

import errno
import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from fraudops.config import Settings
from fraudops.lake.commits import Committed
from fraudops.lake.maintenance import LOG_TABLES
from fraudops.lake.maintenance_auto import AutoMaintainer

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

COMMITS_KEPT = 200  # the commit-latency quantiles are over the last this many commits
NO_SPACE = "no_space"  # the drainer's lake state while the lake's disk is full


class LogUpkeep:
    def __init__(
        self, settings: Settings, spec_name: str | None, open_lake: Callable[[], Lake]
    ) -> None:
        self.maintainer = AutoMaintainer(settings, spec_name, LOG_TABLES, "log")
        self.open_lake = open_lake  # a lake of its own when maintenance is due
        self.latencies: deque[float] = deque(maxlen=COMMITS_KEPT)
        self._base: dict[str, Any] = {}

    def carry_on(self, previous: Mapping[str, Any]) -> None:
        """Counters go on from a previous writer's status (Prometheus counters never drop)."""
        self._base = {
            k: previous[k]
            for k in ("maintenance_runs", "maintenance_files_removed")
            if type(previous.get(k)) is int
        }
        if isinstance(previous.get("maintenance_last_run_at"), int | float):
            self._base["maintenance_last_run_at"] = previous["maintenance_last_run_at"]

    def committed(self, started: float) -> None:
        """A commit that began at ``started`` (time.perf_counter) succeeded."""
        self.latencies.append(time.perf_counter() - started)

    def after_commit(self, event: Committed) -> None:
        """A commit subscriber (runtime.py): the log tables' maintenance, when due."""
        self.maintainer.maybe_run(self.open_lake)

    def quantile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1]

    def status(self) -> dict[str, Any]:
        m = self.maintainer
        return {
            "commit_seconds_p50": self.quantile(0.5),
            "commit_seconds_p99": self.quantile(0.99),
            "maintenance_runs": self._base.get("maintenance_runs", 0) + m.runs,
            "maintenance_files_removed": self._base.get("maintenance_files_removed", 0)
            + m.files_removed,
            "maintenance_last_run_at": m.last_run_at or self._base.get("maintenance_last_run_at"),
        }


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
