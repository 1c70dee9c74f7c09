"""The draining side of the Redis Streams inference log: ``fraudops log-consumer``.

See ``redis_producer.py`` for the design (delivery at least once on the Redis side, exactly once
in the lake, dead letters, limits).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.inference_log.base import Batch, DrainReport
from fraudops.inference_log.redis_producer import (
    DEAD_SUFFIX,
    RECORD_FIELD,
    id_key,
    redacted_url,
    redis_client,
    text,
)
from fraudops.inference_log.sink import PredictionSink
from fraudops.inference_log.upkeep import LogUpkeep
from fraudops.lake.catalog import TableReplacedError
from fraudops.lake.commits import CommitListeners, Committed
from fraudops.lake.schemas import PREDICTIONS

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

log = logging.getLogger(__name__)

# A blocking read never waits longer than this, so that a stop request is seen promptly.
MAX_BLOCK_S = 1.0
# How often a running consumer looks for entries stuck on dead consumers.
MAX_CLAIM_INTERVAL_S = 5.0


@dataclass
class StreamBatch(Batch):
    """Stream entries taken and not yet acknowledged: a ``Batch`` keyed by entry id, plus the
    entries that carry no record (trimmed) and where its lake commit stands."""

    ids: list[str] = field(default_factory=list)  # every entry to ack, in stream order
    reclaimed: int = 0
    trimmed_ids: list[str] = field(default_factory=list)
    started: float = 0.0
    attempts: int = 0  # lake commits tried
    committed: bool = False
    written: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead: list[tuple[str, bytes, str]] = field(default_factory=list)  # settled: (id, raw, why)

    def __len__(self) -> int:
        return len(self.ids)

    def add_entry(self, entry_id: bytes | str, fields: Mapping[bytes, bytes] | None) -> None:
        eid = text(entry_id)
        if not self.ids:
            self.started = time.monotonic()
        self.ids.append(eid)
        if not fields:  # a pending entry whose data the stream no longer has
            self.trimmed_ids.append(eid)
            return
        raw = fields.get(RECORD_FIELD)
        if raw is None:
            self.add_unreadable(eid, b"", f"no {RECORD_FIELD.decode()!r} field")
        else:
            self.add_line(eid, raw)

    def keep_only(self, ids: set[str]) -> None:
        """Drop the entries not in ``ids`` (another consumer took them over)."""
        kept_rows = [i for i, eid in enumerate(self.keys) if eid in ids]
        self.rows = [self.rows[i] for i in kept_rows]
        self.lines = [self.lines[i] for i in kept_rows]
        self.keys = [self.keys[i] for i in kept_rows]
        self.unreadable = [d for d in self.unreadable if d[0] in ids]
        self.trimmed_ids = [eid for eid in self.trimmed_ids if eid in ids]
        self.ids = [eid for eid in self.ids if eid in ids]
        self.reclaimed = min(self.reclaimed, len(self.ids))


def default_consumer_name() -> str:
    # Unique per process: two processes sharing a name would both replay the same pending list.
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisLogConsumer:
    """The Redis backend's ``Drainer``: one member of the stream's consumer group, writing
    batches to the lake through the sink.

    Not thread-safe: one consumer per thread (or, better, per process).
    """

    backend = "redis"

    def __init__(
        self,
        settings: Settings,
        spec_name: str | None = None,
        consumer_name: str | None = None,
        *,
        open_lake: Callable[[], Lake],
        claim_idle_ms: int | None = None,
        listeners: CommitListeners | None = None,
    ) -> None:
        """``open_lake``: opens a new lake client of the spec (``Runtime.lake_factory``)."""
        s = settings.serving
        self.open_lake = open_lake
        self.settings = settings
        self.spec_name = settings.feature_spec(spec_name).name
        self.stream = settings.redis_stream(spec_name)
        self.dead_stream = self.stream + DEAD_SUFFIX
        self.group = s.redis_group
        self.name = consumer_name or default_consumer_name()
        self.claim_idle_ms = claim_idle_ms if claim_idle_ms is not None else s.redis_claim_idle_ms
        self.batch_rows = s.writer_batch_rows
        self.batch_age_s = s.writer_batch_age_s
        self.retry_s = s.writer_retry_s
        self.maxlen = s.redis_maxlen
        self.totals = DrainReport(consumer=self.name, source=self.stream)
        self._client = redis_client(settings)
        self._sink: PredictionSink | None = None
        # Told of every batch settled (the aggregates, maintenance: runtime.py subscribes).
        self.listeners = listeners if listeners is not None else CommitListeners()
        self.upkeep = LogUpkeep(settings, self.spec_name, open_lake)  # commit latency, maintenance
        self._group_ready = False
        self._history_cursor: str | None = "0"  # own pending list first, after every start
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._batch: StreamBatch | None = None
        self._orphans = 0  # trimmed entries XAUTOCLAIM dropped from the pending list, unreported

    # ---- set-up --------------------------------------------------------------------------

    @property
    def sink(self) -> PredictionSink:
        if self._sink is None:
            self._sink = PredictionSink(self.settings, self.spec_name, open_lake=self.open_lake)
        return self._sink

    def ensure_group(self) -> None:
        """Create the stream and the group (from the first entry) unless they exist."""
        try:
            self._client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
        self.listeners.close()
        self._client.close()

    def __enter__(self) -> RedisLogConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the loops -----------------------------------------------------------------------

    def drain(self) -> DrainReport:
        """Settle everything available now: own pending list, reclaimable entries, new ones.

        Stops at the first failed lake commit (its entries stay pending: ``last_error`` says
        why) and at a Redis error, which it raises.
        """
        report = DrainReport(consumer=self.name, source=self.stream)
        self._ensure_group()
        self._next_claim = 0.0
        while True:
            if self._batch is None or not self._batch_ready(final=True):
                self._fill(block_s=None, claim_all=True)
            batch = self._batch
            if batch is None:
                break
            if not self._settle(batch, report):
                break
        self._report_orphans(report)
        report.pending = self.pending()
        return report

    def run(self, stop: threading.Event) -> DrainReport:
        """Drain continuously until ``stop`` is set, then settle the batch in hand and return.

        Lake failures and Redis outages are waited out (``writer_retry_s``), never raised. A
        replaced ``predictions`` table stops the consuming: the entries stay pending (named in
        ``last_error``) and the loop waits for ``stop``.
        """
        report = DrainReport(consumer=self.name, source=self.stream)
        while not stop.is_set():
            try:
                self._ensure_group()
                if self._batch is None or not self._batch_ready(final=False):
                    self._fill(block_s=self._block_s(), claim_all=False)
                batch = self._batch
                ready = batch is not None and self._batch_ready(final=False)
                if ready and batch is not None and not self._settle(batch, report):
                    stop.wait(self.retry_s)
            except RedisError as exc:
                self._note_error(
                    report, f"Redis {redacted_url(self.settings.serving.redis_url)}: {exc}"
                )
                self._group_ready = False  # the key may have been deleted: re-create on return
                stop.wait(self.retry_s)
            except TableReplacedError as exc:
                self._note_error(report, str(exc))
                stop.wait()
                return report
        # Stopping: what was read is settled now, or left pending for a restart / takeover.
        try:
            if self._batch is not None:
                self._settle(self._batch, report)
        except RedisError as exc:
            self._note_error(report, f"Redis: {exc}")
        self._report_orphans(report)
        return report

    def pending(self) -> int | None:
        """Entries of the group delivered and not yet acknowledged; None if Redis cannot say."""
        try:
            return int(self._client.xpending(self.stream, self.group)["pending"])
        except RedisError:
            return None

    # ---- taking entries ------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if not self._group_ready:
            self.ensure_group()

    def _block_s(self) -> float:
        batch = self._batch
        if batch is None or not batch.ids:
            return MAX_BLOCK_S
        return max(0.001, min(MAX_BLOCK_S, batch.started + self.batch_age_s - time.monotonic()))

    def _batch_ready(self, *, final: bool) -> bool:
        batch = self._batch
        if batch is None or not batch.ids:
            return False
        if final or batch.replay or batch.committed or len(batch.rows) >= self.batch_rows:
            return True
        return time.monotonic() - batch.started >= self.batch_age_s

    def _fill(self, *, block_s: float | None, claim_all: bool) -> None:
        """Add entries to the batch in hand: re-delivered ones first, in a batch of their own."""
        if self._batch is None or not self._batch.ids:
            replay = self._take_replay(claim_all)
            if replay is not None:
                self._batch = replay
                return
        batch = self._batch if self._batch is not None else StreamBatch()
        room = self.batch_rows - len(batch.rows)
        block_ms = None if block_s is None else max(1, int(block_s * 1000))
        entries = self._read(">", count=max(1, room), block_ms=block_ms)
        for entry_id, fields in entries:
            batch.add_entry(entry_id, fields)
        self._batch = batch if batch.ids else None

    def _read(
        self, start: str, *, count: int, block_ms: int | None = None
    ) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """XREADGROUP of this stream: ``>`` for new entries, an id for this one's pending ones."""
        response: Any = self._client.xreadgroup(
            self.group, self.name, {self.stream: start}, count=count, block=block_ms
        )
        return list(response[0][1]) if response else []

    def _take_replay(self, claim_all: bool) -> StreamBatch | None:
        # 1. This consumer's own pending list, left by a previous life of the same name.
        while self._history_cursor is not None:
            entries = self._read(self._history_cursor, count=self.batch_rows)
            if not entries:
                self._history_cursor = None
                break
            self._history_cursor = text(entries[-1][0])
            batch = StreamBatch(replay=True)
            for entry_id, fields in entries:
                batch.add_entry(entry_id, fields)
            batch.reclaimed = len(batch)
            return batch
        # 2. Entries pending too long on another (presumably dead) consumer.
        now = time.monotonic()
        if not claim_all and now < self._next_claim:
            return None
        while True:
            claimed: Any = self._client.xautoclaim(
                self.stream,
                self.group,
                self.name,
                self.claim_idle_ms,
                start_id=self._claim_cursor,
                count=self.batch_rows,
            )
            cursor, entries, *rest = claimed
            self._claim_cursor = text(cursor)
            deleted = rest[0] if rest else []  # Redis 7 drops those from the pending list itself
            scan_done = self._claim_cursor == "0-0"
            if scan_done:
                self._next_claim = now + min(MAX_CLAIM_INTERVAL_S, self.claim_idle_ms / 2000)
            self._orphans += len(deleted)
            if entries:
                batch = StreamBatch(replay=True)
                for entry_id, fields in entries:
                    batch.add_entry(entry_id, fields)
                batch.reclaimed = len(batch)
                log.info(
                    "inference log: %s took over %d entries pending longer than %d ms",
                    self.name,
                    len(batch.ids),
                    self.claim_idle_ms,
                )
                return batch
            if scan_done:
                return None

    # ---- settling a batch ----------------------------------------------------------------

    def _settle(self, batch: StreamBatch, report: DrainReport) -> bool:
        """Commit the batch (once), then dead-letter and ack it; False if the commit failed."""
        if not batch.committed:
            if batch.attempts and not self._still_held(batch):
                self._batch = None  # all of it was taken over while the lake was down
                return True
            batch.attempts += 1
            if batch.rows:
                started = time.perf_counter()
                try:
                    result = self.sink.commit(
                        batch.rows,
                        dedupe=batch.replay,
                        snapshot_properties={
                            "fraudops.log": "redis",
                            "fraudops.redis.stream": self.stream,
                            "fraudops.redis.consumer": self.name,
                            "fraudops.redis.last_id": batch.keys[-1],
                        },
                    )
                except TableReplacedError:
                    raise  # not a failure to retry: the caller stops writing
                except LakeError as exc:
                    # Nothing acked: the entries stay pending here and are committed on retry,
                    # as a replay since a commit that timed out may still have landed.
                    batch.replay = True
                    report.commit_failures += 1
                    self.totals.commit_failures += 1
                    self._note_error(report, f"lake commit failed: {exc}")
                    return False
                self.upkeep.committed(started)
                batch.written = result.written
                batch.duplicates = result.duplicates
                batch.rejected = len(result.rejected)
                batch.dead = batch.set_aside(result.rejected)
            else:
                batch.dead = batch.set_aside([])
            batch.committed = True
        self._ack(batch)  # a RedisError here leaves the batch committed: only the ack is redone
        self._batch = None
        settled = DrainReport(
            batches=1,
            records=len(batch.rows),
            entries=len(batch.ids),
            written=batch.written,
            duplicates=batch.duplicates,
            reclaimed=batch.reclaimed,
            unreadable=len(batch.dead) - batch.rejected,
            rejected=batch.rejected,
            trimmed=len(batch.trimmed_ids),
            replayed=int(batch.replay and bool(batch.rows)),
        )
        batch.count_unreadable(settled)
        report.add(settled)
        self.totals.add(settled)
        # Best effort, after the ack.
        self.listeners.publish(Committed(self.spec_name, PREDICTIONS, batch.written))
        if batch.dead:
            log.warning(
                "inference log: %d entries could not be stored, kept in %s (first: %s)",
                len(batch.dead),
                self.dead_stream,
                batch.dead[0][2],
            )
        return True

    def _still_held(self, batch: StreamBatch) -> bool:
        """Before retrying a commit: keep only the entries still pending on this consumer, and
        reset their idle time so that nobody takes them over while the lake is being waited
        for (two consumers committing the same replay concurrently could both write it)."""
        order = sorted(batch.ids, key=id_key)
        found: Any = self._client.xpending_range(
            self.stream,
            self.group,
            min=order[0],
            max=order[-1],
            count=len(batch.ids) + 1000,
            consumername=self.name,
        )
        held = {text(entry["message_id"]) for entry in found} & set(batch.ids)
        if len(held) < len(batch.ids):
            log.warning(
                "inference log: %d of %d entries of %s's failed batch were taken over",
                len(batch.ids) - len(held),
                len(batch.ids),
                self.name,
            )
            batch.keep_only(held)
        if held:
            ids: list[Any] = sorted(held, key=id_key)
            self._client.xclaim(self.stream, self.group, self.name, 0, ids, justid=True)
        return bool(held)

    def _ack(self, batch: StreamBatch) -> None:
        pipe = self._client.pipeline(transaction=True)
        for entry_id, raw, reason in batch.dead:
            pipe.xadd(
                self.dead_stream,
                {RECORD_FIELD: raw, b"id": entry_id, b"reason": reason, b"consumer": self.name},
                maxlen=self.maxlen,
                approximate=True,
            )
        pipe.xack(self.stream, self.group, *batch.ids)
        pipe.xdel(self.stream, *batch.ids)
        pipe.execute()

    def _report_orphans(self, report: DrainReport) -> None:
        if self._orphans:
            report.trimmed += self._orphans
            self.totals.trimmed += self._orphans
            self._orphans = 0

    def _note_error(self, report: DrainReport, message: str) -> None:
        report.last_error = self.totals.last_error = message
        log.error("inference log consumer %s: %s", self.name, message)
