"""The Redis store's Lua scripts (online_redis.py) and the one call on its hot path.

The scripts keep Redis's work per request to a few string commands per key; every computation
happens in the store's process. ``PackedScript`` sends the per-request script over a
connection of its own with the command packed here: redis-py's generic command path (argument
encoding, retry and hook layers) cost about three times the packing and the round trip.
``AsyncPackedScript`` is the same call as asyncio I/O, for the server's event loop: it serves
other requests while Redis answers, with no thread hand-off (measured: ~15 µs of CPU a call
against ~35 µs for the blocking one, and no wait for the GIL).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

# KEYS: the n logs, then the id index hash (when transactions are recorded).
# ARGV: control (per log: the epoch read, the offset read to, the bytes to append, flags: 1 =
# the store has read this log, 2 = refresh its time to live), the records to append (one after
# the other), the id index entries (id, entry: each after its uint32 length), a fresh epoch (for
# a log created now), key ttl ms, the index's ttl ms (set when it has none), record (1/0). A few
# binary arguments, not dozens: redis-py packs each argument in Python, and that cost more than
# the script; one HSET for the batch's ids, not a SET each (those were a quarter of the script).
# Returns ONE string: for each log with news (anything but "nothing since the offset"), its
# index (uint32, from 0), a status - S what follows the offset, F the whole log (another epoch),
# N created now (empty), M missing (not created) - its epoch, uint32 length, the bytes. With one
# worker the answer is empty: nothing to parse.
SYNC = """
local ctl, appends, ids, fresh = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key_ttl, id_ttl, record = ARGV[5], ARGV[6], ARGV[7] == '1'
local n = #ctl / 21
local out = {}
local cp, at = 1, 1
for i = 1, n do
  local log = KEYS[i]
  local known, offset, size, flags
  known, offset, size, flags, cp = struct.unpack('<c8I8I4B', ctl, cp)
  local head, status, body = nil, 'S', ''
  if flags % 2 == 1 then  -- read before: the 8 bytes before its offset are the epoch it read
    local tail = redis.call('GETRANGE', log, offset - 8, -1)
    if string.sub(tail, 1, 8) == known then head, body = known, string.sub(tail, 9) end
  end
  if head == nil then  -- new to the store, rewritten, expired (or never made)
    head = redis.call('GETRANGE', log, 0, 7)
    if head == '' then
      status, head = 'M', fresh
      if record then
        status = 'N'
        redis.call('SET', log, fresh, 'PX', key_ttl)
      end
    else
      status, body = 'F', redis.call('GETRANGE', log, 8, -1)
    end
  end
  if status ~= 'S' or #body > 0 then
    out[#out + 1] = struct.pack('<I4', i - 1) .. status .. head .. struct.pack('<I4', #body) .. body
  end
  if record and size > 0 then
    redis.call('APPEND', log, string.sub(appends, at, at + size - 1) .. 'E' .. head)
    at = at + size
    if flags >= 2 and status ~= 'N' then redis.call('PEXPIRE', log, key_ttl) end
  end
end
if record and #ids > 0 then
  local index, fields, ip, len = KEYS[n + 1], {}, 1, 0
  while ip <= #ids do
    len, ip = struct.unpack('<I4', ids, ip)
    fields[#fields + 1] = string.sub(ids, ip, ip + len - 1)
    ip = ip + len
    if #fields == 4000 then  -- unpack() has a stack limit
      redis.call('HSET', index, unpack(fields))
      fields = {}
    end
  end
  if #fields > 0 then redis.call('HSET', index, unpack(fields)) end
  if redis.call('PTTL', index) == -1 then redis.call('PEXPIRE', index, id_ttl) end
end
return table.concat(out)
"""

# KEYS: a log. ARGV: the epoch and length it had when read, the new log, key ttl ms.
REWRITE = """
if redis.call('GETRANGE', KEYS[1], 0, 7) ~= ARGV[1] then return 0 end
if redis.call('STRLEN', KEYS[1]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""

# KEYS: logs. ARGV: key ttl ms, then per log a fresh epoch and the records to append.
APPEND = """
for i = 1, #KEYS do
  local head = redis.call('GETRANGE', KEYS[i], 0, 7)
  if head == '' then
    head = ARGV[2 * i]
    redis.call('SET', KEYS[i], head)
  end
  redis.call('APPEND', KEYS[i], ARGV[2 * i + 1] .. 'E' .. head)
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return 0
"""


class PackedScript:
    """``source`` run with EVALSHA over one dedicated connection (not thread-safe: its caller
    holds a lock); loaded on the first NOSCRIPT answer. A failed call drops the connection,
    the next one reconnects."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest().encode()
        self._conn = client.connection_pool.make_connection()

    def __call__(self, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        from redis.exceptions import NoScriptError

        packed = pack_command([b"EVALSHA", self._sha, b"%d" % len(keys), *keys, *args])
        for attempt in (1, 2):
            try:
                self._conn.send_packed_command([packed])
                return self._conn.read_response()
            except NoScriptError:
                if attempt == 2:
                    raise
                self._client.script_load(self._source)
            except BaseException:
                self._conn.disconnect()
                raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.disconnect()


def pack_command(parts: Sequence[bytes]) -> bytes:
    """A command in RESP."""
    return b"".join([b"*%d\r\n" % len(parts), *(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)])


class AsyncPackedScript:
    """``source`` run with EVALSHA over an asyncio stream of the running loop, opened on first
    use (again after a failure, or on another loop) with the client's connection settings
    (host and port or unix socket, TLS, user and password, database). One call at a time: its
    caller holds a lock. Answers are read as RESP2 (simple, error, integer, bulk)."""

    def __init__(self, client: redis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self._sha = hashlib.sha1(source.encode()).hexdigest().encode()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter, Any] | None = None
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        self._timeout = float(timeout) if timeout else 5.0

    async def __call__(self, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        from redis.exceptions import NoScriptError

        packed = pack_command([b"EVALSHA", self._sha, b"%d" % len(keys), *keys, *args])
        try:
            async with asyncio.timeout(self._timeout):
                reader, writer = await self._connection()
                for attempt in (1, 2):
                    writer.write(packed)
                    try:
                        return await _reply(reader)
                    except NoScriptError:
                        if attempt == 2:
                            raise
                        writer.write(pack_command([b"SCRIPT", b"LOAD", self._source.encode()]))
                        await _reply(reader)
        except BaseException:
            self.close()  # a call cut short leaves the stream mid-answer: a new one next time
            raise
        raise AssertionError("unreachable")

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        if self._stream is not None and self._stream[2] is loop:
            return self._stream[0], self._stream[1]
        self.close()
        kw = self._client.connection_pool.connection_kwargs
        if kw.get("path"):
            reader, writer = await asyncio.open_unix_connection(kw["path"])
        else:
            tls = "SSL" in getattr(kw.get("connection_class"), "__name__", "")
            reader, writer = await asyncio.open_connection(
                kw.get("host", "localhost"),
                kw.get("port", 6379),
                ssl=ssl.create_default_context() if tls else None,
            )
        self._stream = (reader, writer, loop)
        setup = []
        if kw.get("password"):
            user = [kw["username"].encode()] if kw.get("username") else []
            setup.append([b"AUTH", *user, str(kw["password"]).encode()])
        if kw.get("db"):
            setup.append([b"SELECT", b"%d" % int(kw["db"])])
        for command in setup:
            writer.write(pack_command(command))
            await _reply(reader)
        return reader, writer

    def close(self) -> None:
        """Drop the stream (from any thread: closed on its loop if that one still runs)."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        writer, loop = stream[1], stream[2]
        try:
            if loop.is_closed():
                return
            if loop.is_running():
                loop.call_soon_threadsafe(writer.close)
            else:
                writer.close()
        except RuntimeError:  # the loop closed meanwhile
            pass


async def _reply(reader: asyncio.StreamReader) -> Any:
    """One RESP2 answer: bytes, int, None, or the error raised (redis-py's classes)."""
    from redis.exceptions import NoScriptError, ResponseError

    line = await reader.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        return (await reader.readexactly(size + 2))[:-2]
    if kind == b"+":
        return rest
    if kind == b":":
        return int(rest)
    if kind == b"-":
        message = rest.decode(errors="replace")
        raise (NoScriptError if message.startswith("NOSCRIPT") else ResponseError)(message)
    raise ResponseError(f"unexpected answer from Redis: {line[:40]!r}")
