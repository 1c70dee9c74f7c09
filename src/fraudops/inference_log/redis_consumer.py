"""The inference log through Redis Streams: the scale-out alternative to the local spool.

Selected with ``serving.log_backend: redis``. Every server process appends its records to one
stream per spec (``settings.redis_stream(spec)``); any number of ``fraudops log-consumer``
processes, on any machine, drain it into the lake as one consumer group.

Delivery is at least once on the Redis side and exactly once in the lake:

* an entry is acknowledged (XACK, then XDEL: the stream is a queue, this group owns it) only
  after the lake commit that holds its row succeeded, in one MULTI with its dead letters;
* a consumer that dies leaves its entries pending; after ``redis_claim_idle_ms`` another one
  takes them over (XAUTOCLAIM), and a restarted consumer first re-reads its own pending list;
* those re-delivered entries may already be in the lake (the process died between the commit
  and the ack), so they are committed with ``dedupe=True``: rows whose inference id the lake
  already holds are skipped.

Entries that cannot be stored (no record field, not a record, refused by the table's types) are
acknowledged and copied to ``<stream>:dead`` with the reason, so they never block the stream.

Limits: ``redis_claim_idle_ms`` must exceed the longest lake commit, or a live but slow consumer
has its batch taken over while it commits (both then write it). MAXLEN trimming drops the oldest
entries even when unread: size ``redis_maxlen`` for the longest lake outage to ride out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.serving.records import parse_line
from fraudops.serving.sink import PredictionSink

log = logging.getLogger(__name__)

RECORD_FIELD = b"r"
DEAD_SUFFIX = ":dead"
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
# After a failed append the producer drops without trying for this long: a Redis that is down
# must not cost every micro-batch a connection timeout on the request path.
PRODUCER_BACKOFF_S = 0.5
DROP_LOG_EVERY = 1000
# A blocking read never waits longer than this, so that a stop request is seen promptly.
MAX_BLOCK_S = 1.0
# How often a running consumer looks for entries stuck on dead consumers.
MAX_CLAIM_INTERVAL_S = 5.0


def _client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.serving.redis_url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def redacted_url(url: str) -> str:
    # redis://user:secret@host -> redis://user:***@host
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not at or ":" not in auth:
        return url
    return f"{scheme}{sep}{auth.split(':', 1)[0]}:***@{host}"


# ---- the appending side ----------------------------------------------------------------------


@dataclass
class ProducerCounters:
    records_appended: int = 0
    records_dropped: int = 0
    append_errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None


class RedisLogProducer:
    """Appends encoded records to the spec's stream. Never raises into the request path.

    Thread-safe (redis-py's connection pool); one pipelined round trip per call.
    """

    backend = "redis"

    def __init__(
        self, settings: Settings, spec_name: str | None = None, *, client: redis.Redis | None = None
    ) -> None:
        self.settings = settings
        self.stream = settings.redis_stream(spec_name)
        self.group = settings.serving.redis_group
        self.maxlen = settings.serving.redis_maxlen
        self.counters = ProducerCounters()
        self._client = client or _client(settings)
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def append(self, line: bytes) -> bool:
        """Append one encoded record (see :func:`records.encode`); False if it was dropped."""
        return self.append_many([line]) == 1

    def append_many(self, lines: Sequence[bytes]) -> int:
        """Append the records, one XADD each, in one round trip; returns how many Redis took.

        On a Redis error the records are dropped and counted (like a full spool), never raised.
        """
        if not lines:
            return 0
        if time.monotonic() < self._resume_at:
            self._dropped(len(lines), None)
            return 0
        pipe = self._client.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(self.stream, {RECORD_FIELD: line}, maxlen=self.maxlen, approximate=True)
        try:
            results = pipe.execute(raise_on_error=False)
        except RedisError as exc:  # connection refused, timeout: nothing is known to be in
            self._resume_at = time.monotonic() + PRODUCER_BACKOFF_S
            self._dropped(len(lines), exc)
            return 0
        failures = [r for r in results if isinstance(r, Exception)]
        accepted = len(lines) - len(failures)
        with self._lock:
            self.counters.records_appended += accepted
        if failures:  # OOM, a wrong key type: per command
            self._dropped(len(failures), failures[0])
        return accepted

    def _dropped(self, count: int, error: BaseException | None) -> None:
        with self._lock:
            before = self.counters.records_dropped
            self.counters.records_dropped += count
            dropped = self.counters.records_dropped
            if error is not None:
                self.counters.append_errors += 1
                self.counters.last_error = f"{type(error).__name__}: {error}"
                self.counters.last_error_at = time.time()
        if error is not None:
            log.error(
                "inference log: %d record(s) dropped, Redis stream %s at %s failed: %s",
                count,
                self.stream,
                redacted_url(self.settings.serving.redis_url),
                error,
            )
        elif before == 0 or before // DROP_LOG_EVERY != dropped // DROP_LOG_EVERY:
            log.warning(
                "inference log: Redis unavailable, dropping new records, %d dropped so far",
                dropped,
            )

    def stats(self) -> dict[str, Any]:
        """Counters plus the stream's length and the group's pending count (None if unknown)."""
        c = self.counters
        length: int | None = None
        pending: int | None = None
        error = c.last_error
        try:
            length = int(self._client.xlen(self.stream))
            try:
                pending = int(self._client.xpending(self.stream, self.group)["pending"])
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                pending = 0  # no consumer ever started
        except RedisError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return {
            "redis_stream": self.stream,
            "stream_length": length,
            "pending": pending,
            "records_appended": c.records_appended,
            "records_dropped": c.records_dropped,
            "redis_append_errors": c.append_errors,
            "redis_last_error": error,
        }

    def close(self) -> None:
        self._client.close()


# ---- the draining side -----------------------------------------------------------------------


@dataclass
class DrainReport:
    """What a consumer did: stream entries settled and rows written (cumulative or per drain)."""

    consumer: str = ""
    stream: str = ""
    batches: int = 0
    entries: int = 0  # acknowledged entries, of every kind
    written: int = 0  # rows appended to `predictions`
    duplicates: int = 0  # re-delivered rows the lake already held
    reclaimed: int = 0  # entries taken over from other consumers or this one's pending list
    malformed: int = 0  # entries that were not a record: dead-lettered
    rejected: int = 0  # records the table refused: dead-lettered
    trimmed: int = 0  # pending entries whose data MAXLEN had already trimmed
    commit_failures: int = 0
    last_error: str | None = None
    pending: int | None = None  # entries of the group still pending after the drain

    def add(self, other: DrainReport) -> None:
        for name in (
            "batches",
            "entries",
            "written",
            "duplicates",
            "reclaimed",
            "malformed",
            "rejected",
            "trimmed",
            "commit_failures",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.last_error:
            self.last_error = other.last_error

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Batch:
    """Entries taken from the stream and not yet acknowledged."""

    replay: bool = False  # re-delivered entries: may already be in the lake
    ids: list[str] = field(default_factory=list)  # every entry to ack, in stream order
    rows: list[dict[str, Any]] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    row_lines: list[bytes] = field(default_factory=list)
    dead: list[tuple[str, bytes, str]] = field(default_factory=list)  # (id, raw, reason)
    reclaimed: int = 0
    trimmed_ids: list[str] = field(default_factory=list)
    started: float = 0.0
    attempts: int = 0  # lake commits tried
    committed: bool = False
    written: int = 0
    duplicates: int = 0
    rejected: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, entry_id: bytes | str, fields: Mapping[bytes, bytes] | None) -> None:
        eid = _text(entry_id)
        if not self.ids:
            self.started = time.monotonic()
        self.ids.append(eid)
        if not fields:  # a pending entry whose data the stream no longer has
            self.trimmed_ids.append(eid)
            return
        raw = fields.get(RECORD_FIELD)
        if raw is None:
            self.dead.append((eid, b"", f"no {RECORD_FIELD.decode()!r} field"))
            return
        row = parse_line(raw)
        if row is None:
            self.dead.append((eid, raw, "not a JSON record with an inference_id"))
            return
        self.rows.append(row)
        self.row_ids.append(eid)
        self.row_lines.append(raw)

    def keep_only(self, ids: set[str]) -> None:
        """Drop the entries not in ``ids`` (another consumer took them over)."""
        kept_rows = [i for i, eid in enumerate(self.row_ids) if eid in ids]
        self.rows = [self.rows[i] for i in kept_rows]
        self.row_lines = [self.row_lines[i] for i in kept_rows]
        self.row_ids = [self.row_ids[i] for i in kept_rows]
        self.dead = [d for d in self.dead if d[0] in ids]
        self.trimmed_ids = [eid for eid in self.trimmed_ids if eid in ids]
        self.ids = [eid for eid in self.ids if eid in ids]
        self.reclaimed = min(self.reclaimed, len(self.ids))


def default_consumer_name() -> str:
    # Unique per process: two processes sharing a name would both replay the same pending list.
    return f"{socket.gethostname()}-{os.getpid()}"


class RedisLogConsumer:
    """One member of the stream's consumer group, writing batches to the lake through the sink.

    Not thread-safe: one consumer per thread (or, better, per process).
    """

    def __init__(
        self,
        settings: Settings,
        spec_name: str | None = None,
        consumer_name: str | None = None,
        *,
        claim_idle_ms: int | None = None,
    ) -> None:
        s = settings.serving
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
        self.totals = DrainReport(consumer=self.name, stream=self.stream)
        self._client = _client(settings)
        self._sink: PredictionSink | None = None
        self._group_ready = False
        self._history_cursor: str | None = "0"  # own pending list first, after every start
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        self._batch: _Batch | None = None
        self._orphans = 0  # trimmed entries XAUTOCLAIM dropped from the pending list, unreported

    # ---- set-up --------------------------------------------------------------------------

    @property
    def sink(self) -> PredictionSink:
        if self._sink is None:
            self._sink = PredictionSink(self.settings, self.spec_name)
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
        self._client.close()

    def __enter__(self) -> RedisLogConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the loops -----------------------------------------------------------------------

    def drain_once(self) -> DrainReport:
        """Settle everything available now: own pending list, reclaimable entries, new ones.

        Stops at the first failed lake commit (its entries stay pending: ``last_error`` says
        why) and at a Redis error, which it raises.
        """
        report = DrainReport(consumer=self.name, stream=self.stream)
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

        Lake failures and Redis outages are waited out (``writer_retry_s``), never raised.
        """
        report = DrainReport(consumer=self.name, stream=self.stream)
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
        batch = self._batch if self._batch is not None else _Batch()
        room = self.batch_rows - len(batch.rows)
        block_ms = None if block_s is None else max(1, int(block_s * 1000))
        entries = self._read(">", count=max(1, room), block_ms=block_ms)
        for entry_id, fields in entries:
            batch.add(entry_id, fields)
        self._batch = batch if batch.ids else None

    def _read(
        self, start: str, *, count: int, block_ms: int | None = None
    ) -> list[tuple[bytes, dict[bytes, bytes] | None]]:
        """XREADGROUP of this stream: ``>`` for new entries, an id for this one's pending ones."""
        response: Any = self._client.xreadgroup(
            self.group, self.name, {self.stream: start}, count=count, block=block_ms
        )
        return list(response[0][1]) if response else []

    def _take_replay(self, claim_all: bool) -> _Batch | None:
        # 1. This consumer's own pending list, left by a previous life of the same name.
        while self._history_cursor is not None:
            entries = self._read(self._history_cursor, count=self.batch_rows)
            if not entries:
                self._history_cursor = None
                break
            self._history_cursor = _text(entries[-1][0])
            batch = _Batch(replay=True)
            for entry_id, fields in entries:
                batch.add(entry_id, fields)
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
            self._claim_cursor = _text(cursor)
            deleted = rest[0] if rest else []  # Redis 7 drops those from the pending list itself
            scan_done = self._claim_cursor == "0-0"
            if scan_done:
                self._next_claim = now + min(MAX_CLAIM_INTERVAL_S, self.claim_idle_ms / 2000)
            self._orphans += len(deleted)
            if entries:
                batch = _Batch(replay=True)
                for entry_id, fields in entries:
                    batch.add(entry_id, fields)
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

    def _settle(self, batch: _Batch, report: DrainReport) -> bool:
        """Commit the batch (once), then dead-letter and ack it; False if the commit failed."""
        if not batch.committed:
            if batch.attempts and not self._still_held(batch):
                self._batch = None  # all of it was taken over while the lake was down
                return True
            batch.attempts += 1
            if batch.rows:
                try:
                    result = self.sink.commit(
                        batch.rows,
                        dedupe=batch.replay,
                        snapshot_properties={
                            "fraudops.log": "redis",
                            "fraudops.redis.stream": self.stream,
                            "fraudops.redis.consumer": self.name,
                            "fraudops.redis.last_id": batch.row_ids[-1],
                        },
                    )
                except LakeError as exc:
                    # Nothing acked: the entries stay pending here and are committed on retry,
                    # as a replay since a commit that timed out may still have landed.
                    batch.replay = True
                    report.commit_failures += 1
                    self.totals.commit_failures += 1
                    self._note_error(report, f"lake commit failed: {exc}")
                    return False
                batch.written = result.written
                batch.duplicates = result.duplicates
                batch.rejected = len(result.rejected)
                for index, reason in result.rejected:
                    batch.dead.append((batch.row_ids[index], batch.row_lines[index], reason))
            batch.committed = True
        self._ack(batch)  # a RedisError here leaves the batch committed: only the ack is redone
        self._batch = None
        settled = DrainReport(
            batches=1,
            entries=len(batch.ids),
            written=batch.written,
            duplicates=batch.duplicates,
            reclaimed=batch.reclaimed,
            malformed=len(batch.dead) - batch.rejected,
            rejected=batch.rejected,
            trimmed=len(batch.trimmed_ids),
        )
        report.add(settled)
        self.totals.add(settled)
        if batch.dead:
            log.warning(
                "inference log: %d entries could not be stored, kept in %s (first: %s)",
                len(batch.dead),
                self.dead_stream,
                batch.dead[0][2],
            )
        return True

    def _still_held(self, batch: _Batch) -> bool:
        """Before retrying a commit: keep only the entries still pending on this consumer, and
        reset their idle time so that nobody takes them over while the lake is being waited
        for (two consumers committing the same replay concurrently could both write it)."""
        order = sorted(batch.ids, key=_id_key)
        found: Any = self._client.xpending_range(
            self.stream,
            self.group,
            min=order[0],
            max=order[-1],
            count=len(batch.ids) + 1000,
            consumername=self.name,
        )
        held = {_text(entry["message_id"]) for entry in found} & set(batch.ids)
        if len(held) < len(batch.ids):
            log.warning(
                "inference log: %d of %d entries of %s's failed batch were taken over",
                len(batch.ids) - len(held),
                len(batch.ids),
                self.name,
            )
            batch.keep_only(held)
        if held:
            ids: list[Any] = sorted(held, key=_id_key)
            self._client.xclaim(self.stream, self.group, self.name, 0, ids, justid=True)
        return bool(held)

    def _ack(self, batch: _Batch) -> None:
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
