"""Whether the inference log can reach the lake, as the server tells it (/readyz, /metrics).

Two things make a served prediction unable to land: the catalog or the ``predictions`` table is
missing (a lake folder moved away, a catalog database dropped), or the log's drainer stopped
writing because ``predictions`` was replaced by another table. The server keeps answering — the
log keeps the records — but says so: /readyz fails with the reason, /metrics has the gauges.

The lake is looked at on demand (a probe, a scrape), at most every ``ttl_s``, off the event loop,
with a fresh connection each time: nothing on the request path, nothing created.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.inference_log.base import ProducerStats
from fraudops.lake import Lake
from fraudops.lake.schemas import PREDICTIONS
from fraudops.spec import FeatureSpec

DEFAULT_TTL_S = 1.0
REPLACED = "replaced"
NO_SPACE = "no_space"  # the drainer's commits fail: the lake's disk is full


@dataclass(frozen=True, slots=True)
class LakeHealth:
    available: bool | None  # None: not looked at yet, or not this server's to tell (not spool)
    writing_stopped: bool = False  # the drainer stopped: `predictions` is another table
    reason: str | None = None
    disk_full: bool = False  # the drainer's commits fail for want of space (it retries)

    @property
    def ok(self) -> bool:
        return self.available is not False and not self.writing_stopped and not self.disk_full


class LakeWatch:
    def __init__(
        self,
        settings: Settings,
        spec: FeatureSpec,
        open_lake: Callable[[], Lake],
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.open_lake = open_lake  # Runtime.lake_factory: a client per look, in its thread
        self.ttl_s = ttl_s
        # The spool is drained beside the server, into the lake this server's settings name.
        # Redis consumers run elsewhere (a server there may not even reach the catalog): they
        # report the lake themselves, and /readyz does not fail a server for it.
        self.enabled = settings.serving.log_backend == "spool"
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._available: bool | None = None
        self._missing: str | None = None

    def refresh(self) -> None:
        """Look at the lake again unless it was looked at less than ``ttl_s`` ago (blocking)."""
        if not self.enabled:
            return
        with self._lock:
            if time.monotonic() - self._checked_at < self.ttl_s:
                return
            try:
                with self.open_lake() as lake:
                    lake.check([PREDICTIONS])
            except LakeError as exc:
                self._available, self._missing = False, str(exc)
            else:
                self._available, self._missing = True, None
            self._checked_at = time.monotonic()

    def health(self, log: ProducerStats | None) -> LakeHealth:
        """The last look at the lake, with what the log's drainer last said."""
        if not self.enabled:
            return LakeHealth(available=None)
        stopped = log is not None and log.drainer_state == REPLACED
        reason = self._missing
        if stopped and log is not None:
            reason = log.drainer_error or "the log writer stopped writing: predictions replaced"
        full = log is not None and log.drainer_state == NO_SPACE
        if full and log is not None:
            reason = "the lake's disk is full, the spool keeps the records: " + (
                log.drainer_error or "no space left on device"
            )
        return LakeHealth(
            available=self._available, writing_stopped=stopped, reason=reason, disk_full=full
        )
