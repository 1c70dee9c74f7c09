"""Raw transactions in: a spec with derived features is served from the raw transaction.

A request carries the spec's timestamp, keys and plain features (features/raw_request.py); the
derived features are computed by the online store at the transaction's time and the
transaction recorded there (``compute_and_record_many``: the requests that arrived together, in
order, with one store call - one Redis round trip), then the model's row is built in
``spec.feature_names`` order and scored like any other. The transaction's id in the store is the
client's, else the prediction's inference id, so a label posted by either reaches the store.
A refused request (422) is refused before the store is touched: nothing recorded, nothing logged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from fraudops.features.online import OnlineStore
from fraudops.features.raw_request import RawRequestInvalid, RawRequestParser, RawTransaction
from fraudops.ids import uuid7
from fraudops.lake.schemas import served_raw_columns
from fraudops.serving.requests import ParsedRequest, RequestInvalid
from fraudops.spec import FeatureSpec

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(slots=True)
class RawBatch:
    """A parsed raw request, before the store computed anything."""

    transactions: list[RawTransaction]
    single: bool


class RawPath:
    """Parses raw requests of one spec and computes their model rows with ``store``."""

    def __init__(
        self, spec: FeatureSpec, store: OnlineStore, max_batch: int, max_clock_skew_s: float
    ) -> None:
        self.spec = spec
        self.store = store
        self.max_batch = max_batch
        self.parser = RawRequestParser(spec, max_clock_skew_s)
        self.plain = spec.raw_feature_names
        self.derived = [d.name for d in spec.derived]
        self.raw_columns = served_raw_columns(spec)
        self.seconds = spec.timestamp_kind == "seconds"

    def parse(self, body: bytes, now: dt.datetime) -> RawBatch:
        """The request's transactions, or RequestInvalid (422 naming each bad field)."""
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise RequestInvalid(
                [{"loc": ["body"], "msg": f"body is not valid JSON: {exc}", "type": "json_invalid"}]
            ) from None
        if isinstance(payload, list) and len(payload) > self.max_batch:
            raise RequestInvalid(
                [
                    {
                        "loc": ["body"],
                        "msg": f"at most {self.max_batch} transactions per request "
                        f"(serving.max_batch), got {len(payload)}",
                        "type": "too_long",
                    }
                ]
            )
        try:
            transactions = self.parser.parse_many(payload, now=now)
        except RawRequestInvalid as exc:
            raise RequestInvalid(exc.errors) from None
        return RawBatch(transactions, isinstance(payload, dict))

    def compute_many(
        self, requests: Sequence[tuple[RawBatch, dt.datetime]]
    ) -> tuple[list[ParsedRequest], np.ndarray]:
        """Each transaction's derived features at its time, for several requests (each with its
        request time) with ONE store call, recorded in the store in request order; the model's
        rows per request, and all of them as one matrix (each request's ``X`` is a view of it:
        a batch of them is scored without stacking them again)."""
        txs, ids = self._identified(requests)
        return self._rows(requests, txs, ids, self.store.compute_and_record_many(txs))

    async def compute_many_async(
        self, requests: Sequence[tuple[RawBatch, dt.datetime]]
    ) -> tuple[list[ParsedRequest], np.ndarray]:
        """``compute_many`` on an event loop (a remote store's round trip awaited)."""
        txs, ids = self._identified(requests)
        derived = await self.store.compute_and_record_many_async(txs)
        return self._rows(requests, txs, ids, derived)

    def _identified(
        self, requests: Sequence[tuple[RawBatch, dt.datetime]]
    ) -> tuple[list[RawTransaction], list[tuple[str, str]]]:
        """The transactions with their ids: (inference id, transaction id) each."""
        txs: list[RawTransaction] = []
        ids: list[tuple[str, str]] = []
        for batch, request_time in requests:
            for tx in batch.transactions:
                inference_id = uuid7(request_time)
                if tx.transaction_id is None:
                    tx = tx.with_id(inference_id)
                assert tx.transaction_id is not None
                txs.append(tx)
                ids.append((inference_id, tx.transaction_id))
        return txs, ids

    def _rows(
        self,
        requests: Sequence[tuple[RawBatch, dt.datetime]],
        txs: list[RawTransaction],
        ids: list[tuple[str, str]],
        derived: list[dict[str, float]],
    ) -> tuple[list[ParsedRequest], np.ndarray]:
        plain, names = self.plain, self.derived
        X = np.array(
            [
                [tx.values[c] for c in plain] + [d[c] for c in names]
                for tx, d in zip(txs, derived, strict=True)
            ],
            dtype=np.float64,
        ).reshape(len(txs), len(plain) + len(names))
        out: list[ParsedRequest] = []
        at = 0
        for batch, _ in requests:
            stop = at + len(batch.transactions)
            part = txs[at:stop]
            parsed = ParsedRequest(
                X[at:stop],
                [i for _, i in ids[at:stop]],
                [tx.customer_id for tx in part],
                batch.single,
            )
            parsed.inference_ids = [i for i, _ in ids[at:stop]]
            parsed.raw = [self._raw(tx) for tx in part]
            out.append(parsed)
            at = stop
        return out, X

    def compute(self, batch: RawBatch, request_time: dt.datetime) -> ParsedRequest:
        """``compute_many`` of one request."""
        return self.compute_many([(batch, request_time)])[0][0]

    def _raw(self, tx: RawTransaction) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for column in self.raw_columns:
            if column == self.spec.timestamp_column:
                raw[column] = time_value(tx.time_us, seconds=self.seconds)
            else:
                raw[column] = tx.keys.get(column)
        return raw


def time_value(time_us: int, *, seconds: bool) -> str | float:
    """A transaction time as the log carries it: seconds, or an ISO time to the microsecond."""
    if seconds:
        return time_us / 1_000_000
    return (_EPOCH + dt.timedelta(microseconds=time_us)).isoformat()
