"""The Redis store's per-key log: what happened to one key value, as compact binary records.

A log is an 8-byte epoch (random, new at each rewrite) followed by records, in the order Redis
appended them (little-endian), each append (a batch's records for this key) closed by a mark:

- ``T`` time (int64 µs), the key's value columns (float64 each), id length (uint16), id (UTF-8):
  a transaction recorded (again: it replaces the event, keeping its labels);
- ``L`` confirmed (int64 µs), fraud (uint8), id length, id: a label event, which counts only if
  the key holds the transaction when it is read (as the memory store drops it otherwise);
- ``C`` id length, id: the transaction's labels are forgotten (a warm row that brings them);
- ``E`` the log's epoch: the end of an append. So the 8 bytes before any offset a reader has
  read to are the epoch it read: one read from ``offset - 8`` both checks that the log is the
  one it knows (not rewritten, not expired and made again) and returns what others appended.

Every reader that applies a log's records in order, with the same trimming rules, holds the same
history (online_memory.LocalState): the log is the shared truth, each worker's LocalState its
mirror. Floats travel as their 8 bytes: exact.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from fraudops.features.online import KeyPlan
from fraudops.features.online_keys import KeyHistory, Labels

HEADER = 8
MARK = 1 + HEADER  # ``E`` and the epoch
_LABEL = struct.Struct("<qBH")
_CLEAR = struct.Struct("<H")
_T, _L, _C, _E = ord("T"), ord("L"), ord("C"), ord("E")


@cache
def tx_struct(width: int) -> struct.Struct:
    """A ``T`` record's fixed part for ``width`` value columns: kind, time, values, id length."""
    return struct.Struct(f"<cq{width}dH")


def tx_record(t: int, tx_id: str, values: Sequence[float]) -> bytes:
    raw = tx_id.encode()
    return tx_struct(len(values)).pack(b"T", t, *values, len(raw)) + raw


def label_record(tx_id: str, confirmed: int, fraud: bool) -> bytes:
    raw = tx_id.encode()
    return b"L" + _LABEL.pack(confirmed, int(fraud), len(raw)) + raw


def clear_record(tx_id: str) -> bytes:
    raw = tx_id.encode()
    return b"C" + _CLEAR.pack(len(raw)) + raw


def history_records(plan: KeyPlan, history: KeyHistory) -> bytes:
    """A history as records that rebuild it (a log's rewrite: the caller adds epoch and mark)."""
    parts: list[bytes] = []
    labelled: list[tuple[str, Labels]] = []
    for t, tx_id, values, labels in history.events():
        parts.append(tx_record(t, tx_id, values))
        if labels and plan.needs_labels:
            labelled.append((tx_id, labels))
    for tx_id, labels in labelled:
        parts.extend(label_record(tx_id, confirmed, fraud) for confirmed, fraud in labels)
    return b"".join(parts)


def kept_records(history: KeyHistory) -> int:
    """The records ``history_records`` gives: one per event, one per label event."""
    return len(history.times) + sum(map(len, history.labels.values()))


@dataclass(slots=True)
class TxRecord:
    time_us: int
    tx_id: str
    values: tuple[float, ...]


@dataclass(slots=True)
class LabelRecord:
    tx_id: str
    confirmed_us: int
    fraud: bool


@dataclass(slots=True)
class ClearRecord:
    tx_id: str


Record = TxRecord | LabelRecord | ClearRecord


def decode(data: bytes, width: int) -> list[Record]:
    """The records of a log body (without its header); ``width``: the key's value columns.
    A torn or foreign body raises ValueError naming the offset."""
    out: list[Record] = []
    fixed = tx_struct(width)
    pos, end = 0, len(data)
    try:
        while pos < end:
            kind = data[pos]
            if kind == _T:
                _, t, *values, n = fixed.unpack_from(data, pos)
                pos += fixed.size
                out.append(TxRecord(t, data[pos : pos + n].decode(), tuple(values)))
                pos += n
            elif kind == _L:
                confirmed, fraud, n = _LABEL.unpack_from(data, pos + 1)
                pos += 1 + _LABEL.size
                out.append(LabelRecord(data[pos : pos + n].decode(), confirmed, bool(fraud)))
                pos += n
            elif kind == _E:
                pos += MARK
            elif kind == _C:
                (n,) = _CLEAR.unpack_from(data, pos + 1)
                pos += 1 + _CLEAR.size
                out.append(ClearRecord(data[pos : pos + n].decode()))
                pos += n
            else:
                raise ValueError(f"unknown record kind {kind!r}")
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"online feature log unreadable at byte {pos}: {exc}") from None
    if pos != end:
        raise ValueError(f"online feature log unreadable: a record overruns byte {end}")
    return out
