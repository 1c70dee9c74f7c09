"""The online state in Redis: several workers or servers share it (online.py has the rules).

Per key value, one Redis string ``{prefix}:log:{key column}:{value}``: the key's log
(online_log.py) - an epoch, then every transaction and label event recorded under that key, in
the order Redis received them. Each store keeps a mirror of the logs it has read (a
``LocalState``, as the memory store's) and where it stopped reading each one. A batch of
transactions is ONE script call: for each of its keys, Redis returns only what other workers
appended since this store last read (nothing, with one worker), then appends the batch's
records; the store applies the returned records, computes each transaction on its mirror and
applies the transaction, in order. So the features are computed as if every request of every
worker came one after another, in the order Redis took them, with no per-event Redis work and
no Redis-side arithmetic.

Bounded memory: a store rewrites a log from its mirror when the log holds much more than the
mirror keeps (the rewrite gets a new epoch: the other stores read that log again in full); a
log expires after ``key_ttl_s + late_s`` of idleness (wall clock; the values never depend on
it: time_since_last's cut-off is computed from event times). The id index (a transaction's time
and keys, for a label that comes without them) keeps the retention span of ids
(online_redis_index.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from fraudops.features.online import (
    DEFAULT_LATE_S,
    OnlineHeld,
    OnlineStore,
    require_id,
    warm_rows,
)
from fraudops.features.online_log import (
    HEADER,
    MARK,
    ClearRecord,
    LabelRecord,
    TxRecord,
    clear_record,
    decode,
    history_records,
    kept_records,
    label_record,
    tx_record,
    tx_struct,
)
from fraudops.features.online_memory import LocalState
from fraudops.features.online_redis_index import IdIndex, id_entry
from fraudops.features.online_redis_scripts import (
    APPEND,
    REWRITE,
    SYNC,
    AsyncPackedScript,
    PackedScript,
)
from fraudops.features.raw_request import RawTransaction, to_time_us
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd
    import redis

logger = logging.getLogger(__name__)
Key = tuple[str, str]  # (key column, value)


@dataclass(slots=True)
class _Read:
    """How far this store has read one log: its epoch, the byte offset, the records since, and
    when this store last refreshed its time to live (time.monotonic)."""

    epoch: bytes
    offset: int
    records: int
    refreshed: float
    name: bytes  # the log's Redis key


@dataclass(slots=True)
class _Exchange:
    """One round trip: the logs read; per log (key, this store's read when asked - None: from
    the start -, bytes and records it appends, the log's name); the script's keys and
    arguments; the logs to rewrite once the batch is applied."""

    keys: list[Key]
    logs: list[tuple[Key, _Read | None, int, int, bytes]]
    now: float
    names: list[bytes]
    args: list[bytes]
    long: list[Key]


_CONTROL = struct.Struct("<8sQIB")  # epoch, offset, bytes appended, flags (the script's ctl)
_LENGTH = struct.Struct("<I")
_NO_EPOCH = bytes(HEADER)
_SUFFIX, _CREATED, _MISSING = ord("S"), ord("N"), ord("M")


class RedisStore(OnlineStore):
    """The state in Redis under ``prefix`` (give each spec its own); ``client`` must answer
    bytes (``decode_responses`` off)."""

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "fraudops:online",
        late_s: float = DEFAULT_LATE_S,
        key_ttl_s: float | None = None,  # default: the spec's (features.key_ttl_s)
        client: redis.Redis | None = None,
    ) -> None:
        import redis as redis_lib

        super().__init__(spec, late_s=late_s, key_ttl_s=key_ttl_s)
        self.prefix = prefix
        self._redis = client or redis_lib.Redis.from_url(url)
        self._sync = PackedScript(self._redis, SYNC)
        self._sync_async = AsyncPackedScript(self._redis, SYNC)
        self._rewrite = PackedScript(self._redis, REWRITE)
        self._append = self._redis.register_script(APPEND)
        # A log lives forget_us (key_ttl_s + late_s) of wall-clock idleness: refreshed by a write
        # when this store's last refresh of it is older than 1% of its ttl, it expires after
        # 99-100% of that ttl, so the ttl is forget_us / 0.99 (rounded up).
        ttl_ms = -(-self.forget_us * 100 // 99_000)
        self._key_ttl_ms = b"%d" % max(ttl_ms, 1)
        self._ids = IdIndex(prefix, self.keep_us)
        self._index_ttl_ms = b"%d" % self._ids.hash_ttl_ms
        self._lock = threading.Lock()  # one sync at a time: the mirror follows the logs' order
        self._mirror = LocalState(self.plan, self.keep_us, self.forget_us)
        self._read: dict[Key, _Read] = {}
        self._refresh_s = ttl_ms / 100_000
        self._plans = {p.key: p for p in self.plan.keys}
        self._layouts = [(p.key, p.columns, tx_struct(len(p.columns))) for p in self.plan.keys]

    # ---- key names ------------------------------------------------------------------------

    def _log_key(self, key: Key) -> bytes:
        return f"{self.prefix}:log:{key[0]}:{key[1]}".encode()

    # ---- queries and records --------------------------------------------------------------

    def compute(self, tx: RawTransaction) -> dict[str, float]:
        require_id(tx)
        with self._lock:
            self._exchange(self._keys_of([tx]), {})
            return self._mirror.compute(tx)

    def compute_and_record(self, tx: RawTransaction) -> dict[str, float]:
        return self.compute_and_record_many([tx])[0]

    def compute_and_record_many(self, txs: Sequence[RawTransaction]) -> list[dict[str, float]]:
        return self._record_many(txs, compute=True)

    def record(self, tx: RawTransaction) -> None:
        self._record_many([tx], compute=False)

    def _record_many(
        self, txs: Sequence[RawTransaction], *, compute: bool
    ) -> list[dict[str, float]]:
        appends, ids = self._records(txs)
        with self._lock:
            exchange = self._request(list(appends), appends, ids)
            with self._rereading_on_error(exchange.keys):
                self._absorb(exchange, self._sync(exchange.names, exchange.args))
                return self._finish(txs, exchange, compute=compute)

    async def compute_and_record_many_async(
        self, txs: Sequence[RawTransaction]
    ) -> list[dict[str, float]]:
        """``compute_and_record_many`` with the round trip as asyncio I/O: the event loop
        serves other requests while Redis answers."""
        appends, ids = self._records(txs)
        while not self._lock.acquire(blocking=False):  # held by a label in another thread
            await asyncio.sleep(0.0005)
        try:
            exchange = self._request(list(appends), appends, ids)
            with self._rereading_on_error(exchange.keys):
                self._absorb(exchange, await self._sync_async(exchange.names, exchange.args))
                return self._finish(txs, exchange, compute=True)
        finally:
            self._lock.release()

    @contextmanager
    def _rereading_on_error(self, keys: list[Key]) -> Iterator[None]:
        """If a round trip or applying its answer fails, the mirror forgets ``keys``: their
        logs hold what it may have missed, and are read from the start next time."""
        try:
            yield
        except BaseException:
            for key in keys:
                self._mirror.keys.pop(key, None)
                self._read.pop(key, None)
            raise

    def _records(self, txs: Sequence[RawTransaction]) -> tuple[dict[Key, list[bytes]], bytes]:
        """What recording ``txs`` appends: records per log, and the id index entries (id,
        entry, each after its length)."""
        appends: dict[Key, list[bytes]] = {}
        ids: list[bytes] = []
        length = _LENGTH.pack
        for tx in txs:
            raw = require_id(tx).encode()
            size = len(raw)
            values, keys = tx.values, tx.keys
            for column, columns, fixed in self._layouts:
                own = [float(values[c]) for c in columns]
                record = fixed.pack(b"T", tx.time_us, *own, size) + raw
                key = (column, keys[column])
                found = appends.get(key)
                if found is None:
                    appends[key] = [record]
                else:
                    found.append(record)
            entry = id_entry(tx)
            ids += (length(size), raw, length(len(entry)), entry)
        return appends, b"".join(ids)

    def _finish(
        self, txs: Sequence[RawTransaction], exchange: _Exchange, *, compute: bool
    ) -> list[dict[str, float]]:
        """The mirror, just read, computes and records ``txs`` as the logs now hold them."""
        out = []
        mirror = self._mirror
        for tx in txs:  # no key dropped (swept) between a read and its use
            if compute:
                out.append(mirror.compute_and_record(tx, sweep=False))
            else:
                mirror.record(tx, sweep=False)
        if exchange.long:
            self._rewrite_long_logs(exchange.long)
        self._sweep()
        return out

    def _sweep(self, *, now: bool = False) -> None:
        """The mirror's periodic sweep; a log whose key it forgot is read in full next time."""
        if self._mirror.maybe_sweep(now=now):
            kept = self._mirror.keys
            self._read = {k: r for k, r in self._read.items() if k in kept}

    def _keys_of(self, txs: Sequence[RawTransaction]) -> list[Key]:
        return list(dict.fromkeys((p.key, tx.keys[p.key]) for tx in txs for p in self.plan.keys))

    def _exchange(self, keys: list[Key], appends: Mapping[Key, list[bytes]]) -> None:
        """One round trip: read what the logs of ``keys`` gained since this store last read
        them and apply it to the mirror; with ``appends`` (records per log), append them (the
        caller applies them to the mirror next, under the same lock)."""
        exchange = self._request(keys, appends, b"")
        with self._rereading_on_error(exchange.keys):
            self._absorb(exchange, self._sync(exchange.names, exchange.args))

    def _request(
        self, keys: list[Key], appends: Mapping[Key, list[bytes]], ids: bytes
    ) -> _Exchange:
        """The round trip's arguments. Each read log's offset and record count move past what
        this store appends, ahead of the answer (it says only what differs: another store's
        records, a new epoch): a caller that fails after this forgets these logs."""
        now = time.monotonic()
        reads, held, pack = self._read, self._mirror.keys, _CONTROL.pack
        exchange = _Exchange(keys, [], now, [], [], [])
        logs, names, control, blobs = exchange.logs, exchange.names, [], []
        for key in keys:
            read = reads.get(key)
            if read is not None and key not in held:  # forgotten by the mirror: read anew
                read = None
            records = appends.get(key)
            blob, count = (b"".join(records), len(records)) if records else (b"", 0)
            if read is None:
                control.append(pack(_NO_EPOCH, HEADER, len(blob), 2))
                name = self._log_key(key)
            else:
                stale = now - read.refreshed > self._refresh_s
                control.append(pack(read.epoch, read.offset, len(blob), 1 | stale << 1))
                if stale and blob:  # the script refreshes its time to live
                    read.refreshed = now
                name = read.name
                read.offset += (len(blob) + MARK) if blob else 0
                read.records += count
                history = held[key]  # an exact count only past a cheap test (labels: >= 1)
                long = read.records > 2 * (len(history.times) + len(history.labels)) + 32
                if count and long and read.records > 2 * kept_records(history) + 32:
                    exchange.long.append(key)
            logs.append((key, read, len(blob), count, name))
            names.append(name)
            blobs.append(blob)
        if ids:
            names.append(self._ids.current())
        exchange.args = [
            b"".join(control),
            b"".join(blobs),
            ids,
            os.urandom(HEADER),
            self._key_ttl_ms,
            self._index_ttl_ms,
            b"1" if appends else b"0",
        ]
        return exchange

    def _absorb(self, exchange: _Exchange, reply: bytes) -> None:
        """The script's news onto the mirror: another store's records (before this store's,
        which the caller applies next), or a log to take from its start."""
        reads, held, now = self._read, self._mirror.keys, exchange.now
        pos, end = 0, len(reply)
        while pos < end:
            (i,) = _LENGTH.unpack_from(reply, pos)
            status = reply[pos + 4]
            epoch = reply[pos + 5 : pos + 5 + HEADER]
            (size,) = _LENGTH.unpack_from(reply, pos + 5 + HEADER)
            start = pos + 9 + HEADER
            pos = start + size
            key, read, appended, count, name = exchange.logs[i]
            if status == _SUFFIX and read is not None:  # another store's, before this one's
                self._apply(key, read, reply[start:pos])
                continue
            held.pop(key, None)  # new here, rewritten, expired: the log from its start
            reads.pop(key, None)
            if status == _MISSING:
                continue
            fresh = now if status == _CREATED or appended else -math.inf  # its ttl set now
            read = reads[key] = _Read(epoch, HEADER, 0, fresh, name)
            if size:
                self._apply(key, read, reply[start:pos])
            read.offset += (appended + MARK) if appended else 0
            read.records += count

    def _apply(self, key: Key, read: _Read, body: bytes) -> None:
        """Another store's records of one log, in order, onto the mirror."""
        plan = self._plans[key[0]]
        records = decode(body, len(plan.columns))
        mirror = self._mirror
        history = mirror.history(plan, key[1])
        for rec in records:
            if isinstance(rec, TxRecord):
                mirror.put(plan, key[1], rec.time_us, rec.tx_id, rec.values)
            elif isinstance(rec, LabelRecord):
                if plan.needs_labels:
                    history.add_label(rec.tx_id, rec.confirmed_us, rec.fraud)
            elif isinstance(rec, ClearRecord) and plan.needs_labels:
                history.clear_labels(rec.tx_id)
        if records:
            mirror.trim([history], sweep=False)
        read.offset += len(body)
        read.records += len(records)

    def _rewrite_long_logs(self, keys: list[Key]) -> None:
        """Rewrite each log of ``keys`` (those holding twice what their rewrite would, and more
        than a few records) - unless another store appended meanwhile: then later. A failed
        rewrite is left for later too: the batch it follows is recorded, and answered. (Rare
        since a log counts its label records: a blocking call, over the store's own packed
        connection.)"""
        for key in keys:
            read, history = self._read.get(key), self._mirror.keys.get(key)
            if read is None or history is None:
                continue
            epoch = os.urandom(HEADER)
            log = epoch + history_records(self._plans[key[0]], history) + b"E" + epoch
            args = [read.epoch, b"%d" % read.offset, log, self._key_ttl_ms]
            try:
                done = self._rewrite([read.name], args)
            except Exception as exc:  # RedisError, OSError: the connection reconnects next time
                logger.warning("online feature log %s not rewritten (later): %s", key, exc)
                return
            if done == 1:
                records = kept_records(history)
                self._read[key] = _Read(epoch, len(log), records, time.monotonic(), read.name)

    def record_label(
        self,
        transaction_id: str,
        is_fraud: bool,
        confirmed_at: dt.datetime | float,
        keys: Mapping[str, str] | None = None,
    ) -> bool:
        confirmed = to_time_us(confirmed_at)
        if keys is None:
            pipe = self._redis.pipeline(transaction=False)
            for index in self._ids.lookups():
                pipe.hget(index, transaction_id)
            entry = next((e for e in pipe.execute() if e is not None), None)
            if entry is None:
                return False
            keys = orjson.loads(entry)["k"]
            assert keys is not None
        logs = [(p.key, keys[p.key]) for p in self.plan.keys if p.needs_labels and p.key in keys]
        if not logs:
            return False
        record = label_record(transaction_id, confirmed, bool(is_fraud))
        with self._lock:
            # the mirror holds each log up to the label's place: it counts where it finds its
            # transaction, as every reader of the log will decide
            self._exchange(logs, {key: [record] for key in logs})
            return self._mirror.add_label(transaction_id, confirmed, bool(is_fraud), keys)

    def warm(self, frame: pd.DataFrame, batch: int = 1_000) -> int:
        rows = warm_rows(self.plan, frame)
        logs: dict[Key, list[bytes]] = {}
        pipe = self._redis.pipeline(transaction=False)
        index = self._ids.current()
        for n, row in enumerate(rows, 1):
            tx, tx_id = row.tx, require_id(row.tx)
            for plan, own in zip(self.plan.keys, self.plan.all_values(tx), strict=True):
                parts = logs.setdefault((plan.key, tx.keys[plan.key]), [])
                parts.append(tx_record(tx.time_us, tx_id, own))
                if row.labels is not None and plan.needs_labels:
                    parts.append(clear_record(tx_id))
                    parts.extend(label_record(tx_id, c, f) for c, f in row.labels)
            pipe.hset(index, tx_id, id_entry(tx))
            if n % 5_000 == 0:
                pipe.execute()
        pipe.pexpire(index, int(self._index_ttl_ms))  # a period's index outlives its entries
        pipe.execute()
        items = list(logs.items())
        for start in range(0, len(items), batch):  # bounded script calls
            chunk = items[start : start + batch]
            args: list[Any] = [self._key_ttl_ms]
            for _, parts in chunk:
                args += [os.urandom(HEADER), b"".join(parts)]
            self._append(keys=[self._log_key(k) for k, _ in chunk], args=args)
        with self._lock:  # read the logs now, not at the first requests
            keys = list(logs)
            for start in range(0, len(keys), batch):
                self._exchange(keys[start : start + batch], {})
            self._sweep(now=True)
        return len(rows)

    # ---- size and cleanup -----------------------------------------------------------------

    def _logs(self) -> list[bytes]:
        return list(self._redis.scan_iter(match=f"{self.prefix}:log:*", count=1_000))

    def stored_events(self) -> int:
        """The events the logs hold once read and trimmed (what every mirror keeps at most)."""
        reader = LocalState(self.plan, self.keep_us, self._mirror.forget_us)
        prefix = f"{self.prefix}:log:".encode()
        for name in self._logs():
            log = self._redis.get(name)
            if not isinstance(log, bytes):
                continue
            column, _, value = name[len(prefix) :].decode().partition(":")
            plan = self._plans.get(column)
            if plan is None:
                continue
            for rec in decode(log[HEADER:], len(plan.columns)):
                if isinstance(rec, TxRecord):
                    reader.put(plan, value, rec.time_us, rec.tx_id, rec.values)
        reader.maybe_sweep(now=True)
        return reader.stored_events()

    def held(self) -> OnlineHeld:
        """The mirror's size (the logs and the id index are Redis's: INFO memory, SCAN).

        Read without the lock: the event loop asks (/metrics) while a batch may hold it across
        its await; a copy of the keys' histories (atomic under the GIL) is what is counted."""
        histories = list(self._mirror.keys.values())
        return OnlineHeld(len(histories), sum(len(h) for h in histories), None)

    def log_bytes(self) -> int:
        """The bytes the logs take in Redis (how far rewriting keeps them bounded)."""
        return sum(int(self._redis.strlen(name)) for name in self._logs())

    def clear(self) -> None:
        batch: list[bytes] = []
        for key in self._redis.scan_iter(match=f"{self.prefix}:*", count=1_000):
            batch.append(key)
            if len(batch) >= 1_000:
                self._redis.unlink(*batch)
                batch = []
        if batch:
            self._redis.unlink(*batch)
        with self._lock:
            self._mirror.clear()
            self._read.clear()

    def close(self) -> None:
        self._sync.close()
        self._sync_async.close()
        self._rewrite.close()
        self._redis.close()
