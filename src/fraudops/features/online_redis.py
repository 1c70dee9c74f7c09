"""The online state in Redis: several workers or servers share it (online.py has the rules).

Per key value (``{prefix}:z|e|l:{key column}:{value}``): a sorted set of transaction ids scored
by time (µs, exact in a double up to 2**53), a hash id -> the key's value columns (``repr``
floats: they round-trip exactly) and a hash id -> its label events (``confirmed_us:0|1;...``).
One Lua script fetches the windows and records the transaction atomically, so concurrent
workers behave as if their requests came one after another, in ONE round trip whose reply is
one JSON string (a key's payloads only when it has value columns, its labels only when it needs
them); the features are computed in Python from the fetched events (no Redis-side float
arithmetic). Bounded memory: each record
trims its keys to the retention horizon (keeping each key's last older event), every key
expires after ``key_ttl_s`` of idleness (wall clock) and the id index after the retention span.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from fraudops.features.online import (
    DEFAULT_KEY_TTL_S,
    DEFAULT_LATE_S,
    KeyPlan,
    OnlineStore,
    StoredEvent,
    require_id,
    warm_rows,
)
from fraudops.features.raw_request import RawTransaction, to_time_us
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd
    import redis

_TRIM = """
local function hmget(h, members)  -- in chunks: unpack() has a stack limit
  local res = {}
  for s = 1, #members, 4000 do
    local part = redis.call('HMGET', h, unpack(members, s, math.min(s + 3999, #members)))
    for _, v in ipairs(part) do res[#res + 1] = v end
  end
  return res
end
local function trim(z, e, l, cut)
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cut)
  for j = 1, #old - 1 do  -- all but the last: time_since_last reads it
    redis.call('ZREM', z, old[j])
    redis.call('HDEL', e, old[j])
    redis.call('HDEL', l, old[j])
  end
end
"""

# KEYS: newest, id index entry, then z, e, l per key.
# ARGV: t, id, fetch, record, keep_us, key ttl ms, id ttl ms, id entry, then per key: lo, payload,
# and what to fetch ('v' values, 'l' labels). The fetch comes back as ONE JSON string: parsing
# hundreds of RESP bulk strings in Python cost more than all the rest of a request.
_COMPUTE_RECORD = (
    _TRIM
    + """
local t, member = ARGV[1], ARGV[2]
local nk = (#KEYS - 2) / 3
local out = {}
if ARGV[3] == '1' then
  for i = 1, nk do
    local z, e, l = KEYS[3*i], KEYS[3*i+1], KEYS[3*i+2]
    local lo, want = ARGV[6 + 3*i], ARGV[8 + 3*i]
    local range = redis.call('ZRANGEBYSCORE', z, lo, t, 'WITHSCORES')
    local before = redis.call('ZREVRANGEBYSCORE', z, '(' .. lo, '-inf', 'WITHSCORES', 'LIMIT', 0, 2)
    local members = {}
    for j = #before - 1, 1, -2 do members[#members + 1] = before[j] end
    for j = 1, #range, 2 do members[#members + 1] = range[j] end
    local payloads, labels = {}, {}
    if #members > 0 then
      -- always the payloads when the key has values: a missing one marks a trimmed event
      if string.find(want, 'v', 1, true) then payloads = hmget(e, members) end
      if string.find(want, 'l', 1, true) then labels = hmget(l, members) end
    end
    out[i] = {range, before, payloads, labels}
  end
end
if ARGV[4] == '1' then
  local newest = redis.call('GET', KEYS[1])
  if (not newest) or tonumber(t) > tonumber(newest) then
    redis.call('SET', KEYS[1], t)
    newest = t
  end
  local cut = string.format('%.0f', tonumber(newest) - tonumber(ARGV[5]))
  for i = 1, nk do
    local z, e, l = KEYS[3*i], KEYS[3*i+1], KEYS[3*i+2]
    redis.call('ZADD', z, t, member)
    redis.call('HSET', e, member, ARGV[7 + 3*i])
    trim(z, e, l, cut)
    redis.call('PEXPIRE', z, ARGV[6])
    redis.call('PEXPIRE', e, ARGV[6])
    redis.call('PEXPIRE', l, ARGV[6])
  end
  redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[7])
end
if ARGV[3] ~= '1' then return 0 end
return cjson.encode(out)
"""
)

# KEYS: e, l per key. ARGV: id, label entry. Appends where the key still holds the event.
_LABEL = """
local n = 0
for i = 1, #KEYS, 2 do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then
    local cur = redis.call('HGET', KEYS[i + 1], ARGV[1])
    redis.call('HSET', KEYS[i + 1], ARGV[1], cur and (cur .. ';' .. ARGV[2]) or ARGV[2])
    n = n + 1
  end
end
return n
"""

# KEYS: newest, then z, e, l per key. ARGV: newest candidate, keep_us, key ttl ms.
_WARM_FINISH = (
    _TRIM
    + """
local newest = redis.call('GET', KEYS[1])
if (not newest) or tonumber(ARGV[1]) > tonumber(newest) then
  redis.call('SET', KEYS[1], ARGV[1])
  newest = ARGV[1]
end
local cut = string.format('%.0f', tonumber(newest) - tonumber(ARGV[2]))
for i = 2, #KEYS, 3 do
  trim(KEYS[i], KEYS[i + 1], KEYS[i + 2], cut)
  for j = 0, 2 do redis.call('PEXPIRE', KEYS[i + j], ARGV[3]) end
end
return 0
"""
)


def _payload(values: Sequence[float]) -> str:
    return ",".join(repr(v) for v in values)


def _labels(text: str | None) -> list[tuple[int, bool]]:
    if not text:
        return []
    out = []
    for entry in text.split(";"):
        confirmed, fraud = entry.split(":")
        out.append((int(confirmed), fraud == "1"))
    return out


class RedisStore(OnlineStore):
    """The state in Redis under ``prefix`` (give each spec its own)."""

    def __init__(
        self,
        spec: FeatureSpec,
        *,
        url: str = "redis://127.0.0.1:6379/0",
        prefix: str = "fraudops:online",
        late_s: float = DEFAULT_LATE_S,
        key_ttl_s: float = DEFAULT_KEY_TTL_S,
        client: redis.Redis | None = None,
    ) -> None:
        import redis as redis_lib

        super().__init__(spec, late_s=late_s, key_ttl_s=key_ttl_s)
        self.prefix = prefix
        self._redis = client or redis_lib.Redis.from_url(url, decode_responses=True)
        self._compute_record = self._redis.register_script(_COMPUTE_RECORD)
        self._label = self._redis.register_script(_LABEL)
        self._warm_finish = self._redis.register_script(_WARM_FINISH)
        self._key_ttl_ms = str(max(round(key_ttl_s * 1000), 1))
        self._id_ttl_ms = str(max(self.keep_us // 1000, 3_600_000))

    # ---- key names ------------------------------------------------------------------------

    def _key_names(self, key: str, value: str) -> list[str]:
        return [f"{self.prefix}:{kind}:{key}:{value}" for kind in ("z", "e", "l")]

    def _id_key(self, tx_id: str) -> str:
        return f"{self.prefix}:id:{tx_id}"

    @property
    def _newest_key(self) -> str:
        return f"{self.prefix}:newest"

    # ---- queries and records --------------------------------------------------------------

    def _run(self, tx: RawTransaction, *, fetch: bool, record: bool) -> Any:
        tx_id = require_id(tx)
        t = tx.time_us
        keys = [self._newest_key, self._id_key(tx_id)]
        entry = json.dumps({"t": t, "k": {p.key: tx.keys[p.key] for p in self.plan.keys}})
        args: list[str] = [
            str(t),
            tx_id,
            "1" if fetch else "0",
            "1" if record else "0",
            str(self.keep_us),
            self._key_ttl_ms,
            self._id_ttl_ms,
            entry,
        ]
        for plan in self.plan.keys:
            keys += self._key_names(plan.key, tx.keys[plan.key])
            want = ("v" if plan.columns else "") + ("l" if plan.needs_labels else "")
            args += [str(t - plan.lookback_us), _payload(self.plan.key_values(plan, tx)), want]
        return self._compute_record(keys=keys, args=args)

    def _features(self, tx: RawTransaction, fetched: str) -> dict[str, float]:
        histories: dict[str, list[StoredEvent]] = {}
        for plan, fields in zip(self.plan.keys, orjson.loads(fetched), strict=True):
            # Lua's cjson writes an empty table as {}: as falsy as [], read as one
            window, before, payloads, labels = (f or [] for f in fields)
            histories[plan.key] = _events(plan, window, before, payloads, labels)
        return self.plan.compute(tx, histories)

    def compute(self, tx: RawTransaction) -> dict[str, float]:
        return self._features(tx, self._run(tx, fetch=True, record=False))

    def compute_and_record(self, tx: RawTransaction) -> dict[str, float]:
        return self._features(tx, self._run(tx, fetch=True, record=True))

    def record(self, tx: RawTransaction) -> None:
        self._run(tx, fetch=False, record=True)

    def record_label(
        self,
        transaction_id: str,
        is_fraud: bool,
        confirmed_at: dt.datetime | float,
        keys: Mapping[str, str] | None = None,
    ) -> bool:
        confirmed = to_time_us(confirmed_at)
        if keys is None:
            entry = self._redis.get(self._id_key(transaction_id))
            if entry is None:
                return False
            keys = json.loads(str(entry))["k"]
            assert keys is not None
        names: list[str] = []
        for plan in self.plan.keys:
            if plan.needs_labels and plan.key in keys:
                names += self._key_names(plan.key, keys[plan.key])[1:]
        if not names:
            return False
        found = self._label(keys=names, args=[transaction_id, f"{confirmed}:{int(is_fraud)}"])
        return int(found) > 0

    def warm(self, frame: pd.DataFrame, batch: int = 5_000) -> int:
        rows = warm_rows(self.plan, frame)
        touched: dict[tuple[str, str], list[str]] = {}
        newest: int | None = None
        pipe = self._redis.pipeline(transaction=False)
        for n, row in enumerate(rows, 1):
            tx, tx_id = row.tx, require_id(row.tx)
            for plan in self.plan.keys:
                z, e, lab = touched.setdefault(
                    (plan.key, tx.keys[plan.key]), self._key_names(plan.key, tx.keys[plan.key])
                )
                pipe.zadd(z, {tx_id: tx.time_us})
                pipe.hset(e, tx_id, _payload(self.plan.key_values(plan, tx)))
                if row.labels is not None and plan.needs_labels:
                    pipe.hset(lab, tx_id, ";".join(f"{c}:{int(f)}" for c, f in row.labels))
            entry = json.dumps({"t": tx.time_us, "k": dict(tx.keys)})
            pipe.set(self._id_key(tx_id), entry, px=int(self._id_ttl_ms))
            newest = tx.time_us if newest is None else max(newest, tx.time_us)
            if n % batch == 0:
                pipe.execute()
        pipe.execute()
        if newest is not None:
            names = list(touched.values())
            for start in range(0, len(names), 1_000):  # bounded script calls
                chunk = [k for triple in names[start : start + 1_000] for k in triple]
                self._warm_finish(
                    keys=[self._newest_key, *chunk],
                    args=[str(newest), str(self.keep_us), self._key_ttl_ms],
                )
        return len(rows)

    # ---- size and cleanup -----------------------------------------------------------------

    def stored_events(self) -> int:
        total = 0
        for key in self._redis.scan_iter(match=f"{self.prefix}:z:*", count=1_000):
            total += int(self._redis.zcard(key))
        return total

    def clear(self) -> None:
        batch: list[str] = []
        for key in self._redis.scan_iter(match=f"{self.prefix}:*", count=1_000):
            batch.append(key)
            if len(batch) >= 1_000:
                self._redis.unlink(*batch)
                batch = []
        if batch:
            self._redis.unlink(*batch)

    def close(self) -> None:
        self._redis.close()


def _events(
    plan: KeyPlan,
    window: list[str],
    before: list[str],
    payloads: list[str | bool],
    labels: list[str | bool],
) -> list[StoredEvent]:
    """The fetched events of one key in (time, id) order (``before`` comes newest first).

    A missing hash field comes as ``false``; the payloads are fetched only when the key has
    value columns, the labels only when it needs them (empty lists otherwise)."""
    members = [before[j] for j in range(len(before) - 2, -1, -2)]
    scores = [before[j] for j in range(len(before) - 1, 0, -2)]
    members += window[0::2]
    scores += window[1::2]
    width = len(plan.columns)
    events = []
    for j, member in enumerate(members):
        values: tuple[float, ...] = ()
        if width:
            payload = payloads[j]
            if not payload:  # an event without its payload: trimmed meanwhile
                continue
            values = tuple(map(float, str(payload).split(",")))
            if len(values) != width:
                continue
        label = labels[j] if labels else None
        parsed = _labels(label) if label and isinstance(label, str) else []
        events.append(StoredEvent(int(float(scores[j])), member, values, parsed))
    events.sort(key=_order)
    return events


def _order(event: StoredEvent) -> tuple[int, str]:
    return (event.time_us, event.tx_id)
