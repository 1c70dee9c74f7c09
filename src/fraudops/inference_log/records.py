"""One served prediction as an inference-log record: its wire form and its `predictions` row.

The hot path only encodes: one ``orjson.dumps`` of a slotted dataclass, one JSON line (~3 µs),
closed by the CRC-32 of its own bytes (``"crc32":"<8 hex>"``, the last key: the line stays one
JSON object). The writer checks it: a record changed after it was written (a flipped bit, an
edit in place) is set aside like a torn line. Lines written before records carried it are read
as they are. Everything else — typing each column, the JSON string of the reason codes, the
amount column that ULB does not have — happens when a batch is decoded into an Arrow table by
the writer, one column at a time.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from fraudops.lake.schemas import predictions_schema, served_raw_columns
from fraudops.spec import FeatureSpec

# Naive datetimes are taken as UTC; NumPy scalars (np.int64 features) serialise natively.
_ENCODE_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_SERIALIZE_NUMPY

CHECKSUM_KEY = "crc32"
_TRAILER_HEAD = b',"crc32":"'
_TRAILER_LEN = len(_TRAILER_HEAD) + 8 + 2  # ,"crc32":"0123abcd"}

# Why a line is set aside; the reason's first word is its kind (``unreadable_kind``).
TORN = "torn last line (process died while writing it)"
CORRUPT = "corrupt line"
CHECKSUM_MISMATCH = "checksum mismatch: the record was changed after it was written"
CHECKSUM_MISSING = "checksum missing, in a segment whose other records carry one"

FEATURES_KEY = "features"
RAW_KEY = "raw"  # a raw transaction's time and keys (lake.schemas.served_raw_columns)
REQUIRED_KEYS = ("inference_id", "request_time")
_JSON_COLUMNS = ("reason_codes",)


@dataclass(slots=True, kw_only=True)
class PredictionRecord:
    """Everything the log keeps about one served prediction (one row of ``predictions``)."""

    inference_id: str
    request_time: dt.datetime
    model_name: str | None
    model_version: str | None
    run_id: str | None
    transaction_id: str | None
    customer_id: str | None
    amount: float | None
    features: dict[str, float | int | None]
    probability: float | None
    prediction: int | None
    threshold: float | None
    risk_tier: str | None
    latency_ms: float | None
    model_latency_ms: float | None
    reason_codes: Sequence[Any] | Mapping[str, Any] | None = None  # stored as a JSON string
    shadow_version: str | None = None
    shadow_probability: float | None = None
    # Specs with derived features: the transaction's time (ISO) and key values, by column name.
    raw: dict[str, str | float | None] | None = None


def encode(record: PredictionRecord) -> bytes:
    """The record as one JSON line (newline included) ending in the CRC-32 of the object
    without it: what the spool and the stream carry."""
    return seal(orjson.dumps(record, option=_ENCODE_OPTIONS))


def seal(body: bytes) -> bytes:
    """A JSON object's bytes as a log line: its CRC-32 appended as the last key, a newline."""
    return b'%s%s%08x"}\n' % (body[:-1], _TRAILER_HEAD, zlib.crc32(body))


def read_line(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the record, ``"ok"``) for a line whose checksum matches, (the record, ``"legacy"``) for
    one written before records carried a checksum, else (None, the reason it is set aside:
    ``CORRUPT`` or ``CHECKSUM_MISMATCH``). A trailing newline is allowed."""
    if line.endswith(b"\n"):
        line = line[:-1]
    checked = len(line) > _TRAILER_LEN and line[-_TRAILER_LEN:-10] == _TRAILER_HEAD
    if checked:
        try:
            expected = int(line[-10:-2], 16)
        except ValueError:
            return None, CHECKSUM_MISMATCH
        view = memoryview(line)
        if zlib.crc32(b"}", zlib.crc32(view[:-_TRAILER_LEN])) != expected:
            return None, CHECKSUM_MISMATCH
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, CORRUPT
    if not isinstance(row, dict) or not isinstance(row.get("inference_id"), str):
        return None, CORRUPT
    if row.pop(CHECKSUM_KEY, None) is not None and not checked:
        return None, CHECKSUM_MISMATCH  # a checksum key out of its place: the line was edited
    return row, "ok" if checked else "legacy"


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The decoded line, or None if it is not a JSON object with an inference id (torn, corrupt)
    or its checksum does not match."""
    return read_line(line)[0]


def unreadable_kind(reason: str) -> str:
    """``torn``, ``checksum`` or ``corrupt``: the kind of a set-aside line, by its reason."""
    kind = reason.split(" ", 1)[0]
    return kind if kind in ("torn", "checksum") else "corrupt"


class PredictionsDecoder:
    """Turns parsed records into Arrow tables in the ``predictions`` schema of one spec."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.spec = spec
        self.schema: pa.Schema = predictions_schema(spec).as_arrow()
        # ULB has an `Amount` feature and no `amount` column: there the record's copy is unused.
        self._features = set(spec.feature_names)
        self._raw = set(served_raw_columns(spec))

    def decode(self, rows: Sequence[Mapping[str, Any]]) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The rows as a table, and (index, reason) of each row that could not be stored.

        A bad row (a string where a number belongs, a missing request time) is left out and
        reported; it never blocks the others.
        """
        rejected = {i: reason for i, row in enumerate(rows) if (reason := self._check(row))}
        while True:
            kept = [row for i, row in enumerate(rows) if i not in rejected]
            kept_index = [i for i in range(len(rows)) if i not in rejected]
            failure = self._build(kept)
            if isinstance(failure, pa.Table):
                return failure, sorted(rejected.items())
            column, bad_positions = failure
            for position in bad_positions:
                value = self._value(kept[position], column)
                rejected[kept_index[position]] = (
                    f"column {column!r}: {value!r} cannot be stored as "
                    f"{self.schema.field(column).type}"
                )

    def _check(self, row: Mapping[str, Any]) -> str | None:
        missing = [key for key in REQUIRED_KEYS if row.get(key) is None]
        if missing:
            return f"missing {', '.join(missing)}"
        features = row.get(FEATURES_KEY)
        if not isinstance(features, Mapping):
            return f"{FEATURES_KEY!r} is not an object"
        if unknown := sorted(set(features) - self._features):
            return f"unknown feature(s) {', '.join(unknown)} for spec {self.spec.name!r}"
        return None

    def _value(self, row: Mapping[str, Any], column: str) -> Any:
        return self._values([row], column)[0]

    def _values(self, rows: list[Mapping[str, Any]], column: str) -> list[Any]:
        if column in self._features:
            return [row[FEATURES_KEY].get(column) for row in rows]
        if column in self._raw:
            return [(row.get(RAW_KEY) or {}).get(column) for row in rows]
        values = [row.get(column) for row in rows]
        if column in _JSON_COLUMNS:
            return [
                v if v is None or isinstance(v, str) else orjson.dumps(v).decode() for v in values
            ]
        return values

    def _build(self, rows: list[Mapping[str, Any]]) -> pa.Table | tuple[str, list[int]]:
        """The table, or the first column that failed and the positions of its bad values."""
        arrays = []
        for field in self.schema:
            values = self._values(rows, field.name)
            try:
                arrays.append(_column(values, field.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
                return field.name, _bad_positions(values, field.type)
        return pa.Table.from_arrays(arrays, schema=self.schema)


def _column(values: list[Any], target: pa.DataType) -> pa.Array:
    if pa.types.is_timestamp(target):
        # ISO strings with an offset (orjson's form); the cast keeps the instant, in UTC.
        return pa.array(values, type=pa.string()).cast(target)
    return pa.array(values, type=target)


def _bad_positions(values: list[Any], target: pa.DataType) -> list[int]:
    bad = []
    for position, value in enumerate(values):
        try:
            _column([value], target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            bad.append(position)
    return bad or list(range(len(values)))  # a failure no single value explains: reject them all
