"""The prediction service: validate → micro-batch → score → log → answer.

Requests that arrive together are scored together. A request parks on a future and the first of
a burst schedules one flush with ``loop.call_soon``: the flush runs after every request already
read by this event-loop turn has parked, so with 16 clients in flight one model call serves
many of them (an XGBoost call costs ~0.4 ms whether it scores 1 row or 30). Nothing waits on a
timer, so a lone request pays no batching delay. Raw transactions (a spec with derived
features) are batched the same way one step earlier: the online store computes and records a
burst with one call (one Redis round trip, awaited as asyncio I/O), which is then scored as one
batch; the requests parsed meanwhile make the next burst.

The inference-log records of a batch are appended to the log (one ``os.write`` for the spool)
before any of its responses is released: a client that got a 200 has its record on disk (in the
page cache, which a SIGKILL of the server does not lose; fsync follows within
``serving.fsync_interval_s``).

Shadow scoring: when the holder has a shadow version, the batch's rows are also scored by it
(probabilities only) and its score goes into each record, never into a response. A shadow
failure costs a warning and the shadow fields of that batch's records, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import numpy as np
import orjson

from fraudops.config import Settings
from fraudops.features.online import OnlineStore
from fraudops.ids import uuid7
from fraudops.inference_log.base import Producer
from fraudops.inference_log.records import PredictionRecord, encode
from fraudops.scoring import ScoredBatch, Scorer
from fraudops.serving.metrics import ServerMetrics
from fraudops.serving.model_holder import ModelHolder
from fraudops.serving.raw_path import RawBatch, RawPath
from fraudops.serving.requests import ParsedRequest, RequestInvalid, RequestParser
from fraudops.spec import FeatureSpec
from fraudops.timeutil import utc_now

log = logging.getLogger(__name__)

SHADOW_WARN_EVERY_S = 60.0  # a failing shadow warns at most this often (it may fail per batch)


class NotReady(Exception):
    """No model is loaded yet (no champion in the registry, or it failed to load)."""


P = TypeVar("P", ParsedRequest, RawBatch)


@dataclass(slots=True)
class _Job(Generic[P]):
    """A request waiting for its batch: its rows (``ParsedRequest``), or a raw request's
    transactions (``RawBatch``) until the online store computed its rows."""

    parsed: P
    explain: bool
    future: asyncio.Future[bytes]
    started: float
    request_time: datetime

    def computed(self, parsed: ParsedRequest) -> _Job[ParsedRequest]:
        """This raw request with its rows, on the same future."""
        return _Job(parsed, self.explain, self.future, self.started, self.request_time)


class PredictionService:
    def __init__(
        self,
        settings: Settings,
        spec: FeatureSpec,
        holder: ModelHolder,
        inference_log: Producer,
        metrics: ServerMetrics,
        *,
        clock: Callable[[], datetime] | None = None,
        online_store: OnlineStore | None = None,
    ) -> None:
        self.spec = spec
        self.holder = holder
        self.log = inference_log
        self.metrics = metrics
        self.parser = RequestParser(spec, settings.serving.max_batch)
        self._names = spec.feature_names
        self._int_columns = [i for i, f in enumerate(spec.model_features) if f.dtype == "int"]
        # A spec with derived features takes raw transactions (raw_path.py); the others keep
        # the ready-made features' path untouched.
        self.raw: RawPath | None = None
        if spec.derived:
            if online_store is None:
                raise ValueError(f"spec {spec.name!r} derives features: serving needs its store")
            self.raw = RawPath(
                spec,
                online_store,
                settings.serving.max_batch,
                settings.features.max_clock_skew_s,
            )
        self._raw_pending: list[_Job[RawBatch]] = []
        self._raw_drain: asyncio.Task[None] | None = None
        amount = spec.amount_column
        self._amount_index = self._names.index(amount) if amount else None
        self._pending: list[_Job[ParsedRequest]] = []
        self._flush_scheduled = False
        self.records_logged = 0
        self.records_not_logged = 0
        # The request time of a prediction: the wall clock, or a simulation's simulated one.
        self.clock: Callable[[], datetime] = clock or utc_now
        self.shadow_failures = 0  # batches whose shadow scoring failed
        self._shadow_warned_at = float("-inf")

    async def predict(self, body: bytes, *, explain: bool = False) -> bytes:
        """The response body for a request body; raises RequestInvalid or NotReady."""
        started = time.perf_counter()
        request_time = self.clock()
        loop = asyncio.get_running_loop()
        if self.raw is not None:
            batch = self.raw.parse(body, request_time)  # a refused request touches nothing
            if self.holder.current is None:  # not recorded: the transaction is not served
                raise NotReady(self.holder.last_error or "no model loaded yet")
            raw_job = _Job(batch, explain, loop.create_future(), started, request_time)
            self._raw_pending.append(raw_job)
            if self._raw_drain is None:
                self._raw_drain = loop.create_task(self._drain_raw())
            return await raw_job.future
        parsed = self.parser.parse(body)
        if self.holder.current is None:
            raise NotReady(self.holder.last_error or "no model loaded yet")
        job = _Job(parsed, explain, loop.create_future(), started, request_time)
        if explain:  # reason codes cost ~10× a plain score: never hold a batch up for them
            self.parser.validate(parsed)
            self._run([job])
        else:
            self._pending.append(job)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                loop.call_soon(self._flush)
        return await job.future

    async def _drain_raw(self) -> None:
        """The raw requests parsed so far, computed and recorded by the online store with one
        call (one Redis round trip, awaited: the loop reads more requests meanwhile) in
        arrival order, then scored as one batch; the requests parsed meanwhile are the next.
        (Sending the next burst's round trip before scoring this one measured slower: smaller
        bursts, more round trips.)"""
        assert self.raw is not None
        raw_jobs: list[_Job[RawBatch]] = []
        try:
            while self._raw_pending:
                raw_jobs, self._raw_pending = self._raw_pending, []
                requests = [(j.parsed, j.request_time) for j in raw_jobs]
                try:
                    computed, X = await self.raw.compute_many_async(requests)
                except Exception as exc:
                    _fail(raw_jobs, exc)
                    continue
                jobs = [j.computed(parsed) for parsed, j in zip(computed, raw_jobs, strict=True)]
                raw_jobs = []
                self._run_raw(jobs, X)
        except BaseException as exc:  # cancelled at shutdown: no request left waiting
            _fail([*raw_jobs, *self._raw_pending], exc)
            self._raw_pending = []
            raise
        finally:
            self._raw_drain = None

    def _run_raw(self, jobs: list[_Job[ParsedRequest]], X: np.ndarray) -> None:
        """Score a computed raw burst (its rows ``X``); explained requests one at a time."""
        plain = [j for j in jobs if not j.explain]
        if len(plain) == len(jobs):
            self._run(plain, X)  # the burst's rows as computed: no stacking again
        elif plain:
            self._run(plain)
        for job in jobs:
            if job.explain:  # reason codes: one request at a time, as in predict
                try:
                    self.parser.validate(job.parsed)
                except RequestInvalid as exc:
                    _fail([job], exc)
                    continue
                self._run([job])

    def _flush(self) -> None:
        jobs, self._pending = self._pending, []
        self._flush_scheduled = False
        self._run(jobs)

    def _run(self, jobs: list[_Job[ParsedRequest]], X: np.ndarray | None = None) -> None:
        """Score, log and answer ``jobs`` (``X``: their rows stacked, if already)."""
        scorer = self.holder.current  # read once: one version answers the whole batch
        try:
            if scorer is None:
                raise NotReady(self.holder.last_error or "no model loaded")
            jobs, X = self._valid(jobs, X)
            if not jobs:
                return
            scored = scorer.score(X, explain=any(j.explain for j in jobs))
            shadow = self._shadow(scorer, X)
            bodies = self._record_and_answer(scorer, jobs, X, scored, shadow)
        except BaseException as exc:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for job, body in zip(jobs, bodies, strict=True):
            if not job.future.done():  # the client may have gone: its record is logged anyway
                job.future.set_result(body)

    def _shadow(self, scorer: Scorer, X: np.ndarray) -> tuple[str, list[float]] | None:
        """The shadow version and its probabilities for ``X``; None without (or on failure of)
        a shadow. Never raises: the champion's answer must not depend on the challenger."""
        shadow = self.holder.shadow  # read once, like the champion
        if shadow is None or shadow.version == scorer.version:
            return None
        try:
            probabilities = np.asarray(shadow.probabilities(X), dtype=np.float64)
            if probabilities.shape != (len(X),) or not np.isfinite(probabilities).all():
                raise ValueError(
                    f"{len(X)} rows gave {probabilities.shape} probabilities (or some not finite)"
                )
        except Exception as exc:
            self.shadow_failures += 1
            now = time.monotonic()
            if now - self._shadow_warned_at >= SHADOW_WARN_EVERY_S:
                self._shadow_warned_at = now
                log.warning(
                    "shadow version %s failed to score (%d failed batch(es) so far); records "
                    "are logged without shadow fields: %s: %s",
                    shadow.version,
                    self.shadow_failures,
                    type(exc).__name__,
                    exc,
                )
            return None
        return shadow.version, probabilities.tolist()

    def _valid(
        self, jobs: list[_Job[ParsedRequest]], X: np.ndarray | None = None
    ) -> tuple[list[_Job[ParsedRequest]], np.ndarray]:
        """The jobs whose values are all allowed, and their rows; the others get their 422."""
        if X is None:
            X = jobs[0].parsed.X if len(jobs) == 1 else np.vstack([j.parsed.X for j in jobs])
        bad_rows = self.parser.bad_rows(X)
        if not bad_rows.any():
            return jobs, X
        good: list[_Job[ParsedRequest]] = []
        offset = 0
        for job in jobs:
            n = len(job.parsed)
            if bad_rows[offset : offset + n].any():
                job.future.set_exception(RequestInvalid(self.parser.value_errors(job.parsed)))
            else:
                good.append(job)
            offset += n
        if not good:
            return good, X[:0]
        return good, np.vstack([j.parsed.X for j in good])

    def _record_and_answer(
        self,
        scorer: Scorer,
        jobs: list[_Job[ParsedRequest]],
        X: np.ndarray,
        scored: ScoredBatch,
        shadow: tuple[str, list[float]] | None = None,
    ) -> list[bytes]:
        probabilities = scored.probabilities.tolist()
        shadow_version, shadow_probabilities = shadow if shadow is not None else (None, None)
        predictions = scored.predictions.tolist()
        tiers = scored.tiers.tolist()
        rows = X.tolist()
        for i in self._int_columns:
            for row in rows:
                row[i] = int(row[i])
        names = self._names
        amount_index = self._amount_index
        model_ms = scored.model_ms
        now = time.perf_counter()
        lines: list[bytes] = []
        bodies: list[bytes] = []
        offset = 0
        fraud = 0
        for job in jobs:
            n = len(job.parsed)
            latency_ms = (now - job.started) * 1000
            results = []
            for k in range(n):
                i = offset + k
                given = job.parsed.inference_ids
                inference_id = given[k] if given is not None else uuid7(job.request_time)
                reasons = scored.reasons[i] if scored.reasons is not None else None
                row = rows[i]
                lines.append(
                    encode(
                        PredictionRecord(
                            inference_id=inference_id,
                            request_time=job.request_time,
                            model_name=scorer.name,
                            model_version=scorer.version,
                            run_id=scorer.run_id,
                            transaction_id=job.parsed.transaction_ids[k],
                            customer_id=job.parsed.customer_ids[k],
                            amount=None if amount_index is None else row[amount_index],
                            features=dict(zip(names, row, strict=True)),
                            probability=probabilities[i],
                            prediction=predictions[i],
                            threshold=scorer.threshold,
                            risk_tier=tiers[i],
                            latency_ms=latency_ms,
                            model_latency_ms=model_ms,
                            reason_codes=reasons if job.explain else None,
                            shadow_version=shadow_version,
                            shadow_probability=(
                                None if shadow_probabilities is None else shadow_probabilities[i]
                            ),
                            raw=None if job.parsed.raw is None else job.parsed.raw[k],
                        )
                    )
                )
                result: dict[str, Any] = {
                    "inference_id": inference_id,
                    "transaction_id": job.parsed.transaction_ids[k],
                    "probability": probabilities[i],
                    "prediction": predictions[i],
                    "risk_tier": tiers[i],
                }
                if job.explain and reasons is not None:
                    result["reason_codes"] = reasons
                results.append(result)
                fraud += predictions[i]
            probs = probabilities[offset : offset + n]
            bodies.append(
                orjson.dumps(
                    {
                        "model_name": scorer.name,
                        "model_version": scorer.version,
                        "results": results,
                        # seed 000's response shape, for drop-in clients
                        "predictions": predictions[offset : offset + n],
                        "probabilities": {"fraud": probs, "non_fraud": [1.0 - p for p in probs]},
                    }
                )
            )
            offset += n
        kept = self.log.append_many(lines)  # before any response is released
        self.records_logged += kept
        self.records_not_logged += len(lines) - kept
        m = self.metrics
        m.model_latency.observe(model_ms / 1000)
        m.batch_size.observe(len(lines))
        m.predicted_fraud.inc(fraud)
        m.predicted_legit.inc(len(lines) - fraud)
        return bodies


def _fail(jobs: Sequence[_Job[Any]], exc: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            job.future.set_exception(exc)
