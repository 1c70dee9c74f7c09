"""The Dask engine's monitoring window: no process holds it.

``DaskWindow`` is the ``WindowBackend`` (``fraudops.monitoring.backend``) of the Dask engine
(its client: ``DaskEngine.client``). Each partition is read by a worker (``read_dask``: the
request-time filter pushed into the scan, so only the window's day partitions and files are
opened); the statistics are computed by the run from what comes back
(``fraudops.monitoring.run``), as for the local window:

1. **Performance window** (small columns: id, request time, score, decision, versions): the
   predictions and the label events confirmed in the window are both shuffled on inference id;
   per partition a prediction logged twice is kept once (the first in scan order, as the local
   read), the latest label of each id known at ``as_of`` is joined (``labels.store.latest_of``'s
   rule), and the partition is reduced to predictions per cohort day, the shadow versions seen,
   and its **labelled rows** (day, label, score, decision, versions: ~50 bytes a row), which are
   gathered to this process — the per-cohort ROC-AUC and PR-AUC need them, and they are the
   labelled part of the window only (put back in scan order). The fast signals' CBPE needs
   every champion row's score and decision: those small columns are gathered too (~40 bytes a
   row).
2. **Data window** (the features and the score): each partition is reduced to a
   ``fraudops.monitoring.summaries.WindowSummary`` against the champion's reference profile,
   the summaries merged pairwise on the workers (rows of ids logged twice summarised once, on
   this process). A window of at most 10,000 rows (where ``compute_drift`` uses scipy's exact
   small-sample KS distribution) is gathered whole instead.
3. **Crossing intervals** (``values_inside``, when the run asks: some feature's ECDFs cross
   inside a reference interval and few enough rows lie there): the window's values inside
   those intervals, gathered to make the normalised Wasserstein exact.

HTML reports: from a bounded uniform sample — ``monitoring.html_sample_rows`` rows of the data
window (the bottom-k of hashed inference ids, merged with the summaries) and as many labelled
rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.labels.window import ID
from fraudops.lake.catalog import Lake
from fraudops.lake.dask_io import read_dask
from fraudops.lake.schemas import LABELS, PREDICTIONS
from fraudops.models.profile import NumericProfile, ReferenceProfile
from fraudops.monitoring.backend import (
    SHADOW_COLUMNS,
    DataSlice,
    PerformanceSlice,
    WindowRequest,
)
from fraudops.monitoring.drift import SCORE_FEATURE
from fraudops.monitoring.performance import AMOUNT, CARD
from fraudops.monitoring.signals import SCORED_COLUMNS
from fraudops.monitoring.summaries import (
    WindowSummary,
    merge_all,
    needs_rows,
    summarize,
    values_in,
)
from fraudops.monitoring.window import context_columns
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

ORDER = "_order"  # (partition << 32) + row: the scan order, to keep a duplicate's first copy
LABELLED_COLUMNS = [ORDER, "day", "label", "probability", "prediction", *SHADOW_COLUMNS]
# The amount and the card, under performance's names (AMOUNT, CARD), when predictions hold them.
_EVENT_COLUMNS = ["event_id", ID, "label", "confirmed_at", "ingested_at"]
_LATEST_ORDER = ("confirmed_at", "ingested_at", "event_id")


class DaskWindow:
    """A monitoring window over the cluster of ``client``: the ``WindowBackend`` of the Dask
    engine (``fraudops.monitoring.backend``). ``performance_slice`` first: the ids it finds
    logged twice are summarised once by ``data_slice``."""

    def __init__(
        self, client: Client, lake: Lake, spec: FeatureSpec, request: WindowRequest
    ) -> None:
        self.client, self.lake, self.spec, self.request = client, lake, spec, request
        self._dropped: set[str] = set()  # ids logged more than once (pass 1)
        self._frame: dd.DataFrame | None = None  # the data window (pass 2)
        self._first = pd.DataFrame()  # the first copy of each id logged twice (pass 2)

    def performance_slice(self) -> PerformanceSlice:
        perf = _performance_pieces(self.client, self.lake, self.request, self.spec)
        self._dropped = perf.dropped_ids
        html_labelled = None
        if self.request.html:
            limit = self.lake.settings.monitoring.html_sample_rows
            labelled = perf.labelled[["label", "probability"]]
            html_labelled = partial(labelled.sample, min(limit, len(labelled)), random_state=0)
        return PerformanceSlice(
            rows=perf.rows,
            excluded=perf.excluded,
            day_rows=perf.day_rows,
            labelled=perf.labelled,
            shadow_versions=sorted(perf.shadow_versions),
            champion_shadow=perf.champion_shadow,
            html_labelled=html_labelled,
            scored=perf.scored.drop(columns=[ORDER]),
        )

    def data_slice(self, min_samples: int) -> DataSlice:
        import dask

        request, settings = self.request, self.lake.settings
        start, end = as_utc(request.data_start), as_utc(request.as_of)
        where = f"request_time > '{start.isoformat()}' and request_time <= '{end.isoformat()}'"
        names = self.spec.feature_names
        frame = read_dask(
            self.lake, PREDICTIONS, list(dict.fromkeys([ID, "probability", *names])), where
        )
        [profile] = self.client.scatter([request.profile], broadcast=True, hash=False)
        sample_rows = settings.monitoring.html_sample_rows if request.html else 0
        dropped = sorted(self._dropped)
        parts = [
            dask.delayed(_drift_part)(part, i, profile, names, dropped, sample_rows)
            for i, part in enumerate(frame.to_delayed())
        ]
        while len(parts) > 1:  # merged pairwise on the workers: one summary comes back
            merged = [
                dask.delayed(_merge_drift)(a, b, sample_rows)
                for a, b in zip(parts[::2], parts[1::2], strict=False)
            ]
            parts = merged + ([parts[-1]] if len(parts) % 2 else [])
        piece: _DriftPiece = self.client.compute(parts[0]).result()
        summary = piece.summary
        first = piece.twice.sort_values(ORDER, kind="stable").drop_duplicates(ID)
        if len(first):  # each id logged twice summarised once: its first copy in scan order
            once = summarize(
                request.profile,
                first[names].to_numpy(dtype=np.float64),
                first["probability"].to_numpy(dtype=np.float64),
            )
            summary = merge_all([summary, once])
        self._frame, self._first = frame, first
        out = DataSlice(rows=summary.rows, summary=summary)
        if request.html:
            out.html_current = piece.sample
            out.notes.append(
                f"HTML reports from a uniform sample of at most {sample_rows:,} rows per side"
            )
        if min_samples <= summary.rows and needs_rows(request.profile, summary.rows):
            # Small: scipy's exact KS on the rows themselves.
            out.current = frame.compute().drop_duplicates(ID)
        return out

    def values_inside(self, slots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import dask

        assert self._frame is not None, "data_slice first"
        [profile] = self.client.scatter([self.request.profile], broadcast=True, hash=False)
        names, dropped = self.spec.feature_names, sorted(self._dropped)
        wanted = [
            dask.delayed(_inside_part)(part, profile, names, slots, dropped)
            for part in self._frame.to_delayed()
        ]
        found: list[dict[str, np.ndarray]] = self.client.gather(self.client.compute(wanted))
        if len(self._first):
            found.append(_inside(self.request.profile, self._first, names, slots))
        return {k: np.concatenate([f[k] for f in found]) for k in slots}


# ---- pass 1: the performance window --------------------------------------------------------------


@dataclass
class _PerfPiece:
    rows: int  # predictions (each id once, every version)
    excluded: int  # of other versions than the champion
    day_rows: pd.Series  # champion predictions per cohort day
    labelled: pd.DataFrame  # LABELLED_COLUMNS of the champion's rows with a known label
    shadow_versions: set[str]
    champion_shadow: bool  # a champion row carries a shadow score
    dropped_ids: set[str]  # ids logged more than once
    # Every champion row, small columns (the fast signals' CBPE needs the unlabelled ones too).
    scored: pd.DataFrame


def _performance_pieces(
    client: Client, lake: Lake, request: WindowRequest, spec: FeatureSpec
) -> _PerfPiece:
    import dask

    start, end = as_utc(request.perf_start), as_utc(request.as_of)
    where = f"request_time > '{start.isoformat()}' and request_time <= '{end.isoformat()}'"
    present = set(lake.column_names(PREDICTIONS))
    names = {
        c: n for c, n in zip(context_columns(spec), (AMOUNT, CARD), strict=True) if c in present
    }
    columns = [ID, "request_time", "probability", "prediction", *SHADOW_COLUMNS, *names]
    predictions = (
        read_dask(lake, PREDICTIONS, columns, where)
        .rename(columns=names)
        .map_partitions(_with_order)
    )
    k = max(predictions.npartitions, 1)
    if lake.exists(LABELS):
        events = read_dask(
            lake,
            LABELS,
            _EVENT_COLUMNS,
            f"confirmed_at > '{start.isoformat()}' and confirmed_at <= '{end.isoformat()}'",
        )
    else:
        events = _empty_events()
    joined = _co_partitioned(predictions, events, k)
    parts = [dask.delayed(_perf_part)(a, b, request.champion, end) for a, b in joined]
    pieces: list[_PerfPiece] = client.gather(client.compute(parts))
    return _merge_perf(pieces)


def _with_order(frame: pd.DataFrame, partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    number = (partition_info or {}).get("number", 0)
    out = frame.copy()
    out[ORDER] = (np.int64(number) << np.int64(32)) + np.arange(len(frame), dtype=np.int64)
    return out


def _co_partitioned(
    predictions: dd.DataFrame, events: dd.DataFrame, k: int
) -> list[tuple[Any, Any]]:
    """(predictions, events) delayed partition pairs, both hashed on inference id into ``k``
    parts by the same function: every copy of a prediction and every label event of it land in
    the same pair."""
    left = predictions.shuffle(on=ID, npartitions=k).to_delayed()
    right = events.shuffle(on=ID, npartitions=k).to_delayed()
    return list(zip(left, right, strict=True))


def _perf_part(
    predictions: pd.DataFrame, events: pd.DataFrame, champion: str, as_of: datetime
) -> _PerfPiece:
    predictions = predictions.sort_values(ORDER, kind="stable")
    twice = predictions[ID].duplicated(keep="first")
    dropped = set(predictions.loc[twice, ID].astype(str))
    predictions = predictions[~twice]
    shadow_versions = set(predictions["shadow_version"].dropna().astype(str))
    answered = (predictions["model_version"].astype(str) == champion).to_numpy()
    excluded = int((~answered).sum())
    predictions = predictions[answered]
    # latest_labels' rule (labels.store.latest_of): complete events only, the latest confirmed
    # by as_of (the read's filter) — ties to the later ingestion, then the later event id.
    events = events[events[ID].notna() & events["label"].notna() & events["confirmed_at"].notna()]
    ordered = events.sort_values(list(_LATEST_ORDER), kind="stable")
    labels = ordered.drop_duplicates(ID, keep="last")[[ID, "label", "confirmed_at"]]
    joined = predictions.merge(labels, on=ID, how="left")
    as_of_ts = pd.Timestamp(as_of)
    confirmed = pd.to_datetime(joined["confirmed_at"], utc=True)
    known = (joined["label"].notna() & confirmed.notna() & (confirmed <= as_of_ts)).to_numpy()
    joined["day"] = pd.to_datetime(joined["request_time"], utc=True).dt.strftime("%Y-%m-%d")
    labelled = joined.loc[known, [*LABELLED_COLUMNS, *(c for c in (AMOUNT, CARD) if c in joined)]]
    joined["known"] = known
    return _PerfPiece(
        rows=int(answered.size),
        excluded=excluded,
        day_rows=joined.groupby("day").size(),
        labelled=labelled,
        shadow_versions=shadow_versions,
        champion_shadow=bool(joined["shadow_version"].notna().any()),
        dropped_ids=dropped,
        scored=joined[[ORDER, *SCORED_COLUMNS]],
    )


def _merge_perf(pieces: list[_PerfPiece]) -> _PerfPiece:
    days = [p.day_rows for p in pieces if len(p.day_rows)]
    day_rows = pd.concat(days).groupby(level=0).sum() if days else pd.Series(dtype=np.int64)
    labelled = pd.concat([p.labelled for p in pieces], ignore_index=True)
    # The local read's order (scan order), so every figure is computed over the same sequence.
    labelled = labelled.sort_values(ORDER, kind="stable").reset_index(drop=True)
    return _PerfPiece(
        rows=sum(p.rows for p in pieces),
        excluded=sum(p.excluded for p in pieces),
        day_rows=day_rows.astype(np.int64),
        labelled=labelled,
        shadow_versions=set().union(*(p.shadow_versions for p in pieces)),
        champion_shadow=any(p.champion_shadow for p in pieces),
        dropped_ids=set().union(*(p.dropped_ids for p in pieces)),
        scored=pd.concat([p.scored for p in pieces], ignore_index=True)
        .sort_values(ORDER, kind="stable")
        .reset_index(drop=True),
    )


def _empty_events() -> dd.DataFrame:
    import dask.dataframe as dd

    frame = pd.DataFrame(
        {
            "event_id": pd.Series(dtype=object),
            ID: pd.Series(dtype=object),
            "label": pd.Series(dtype="Int32"),
            "confirmed_at": pd.Series(dtype="datetime64[us, UTC]"),
            "ingested_at": pd.Series(dtype="datetime64[us, UTC]"),
        }
    )
    return dd.from_pandas(frame, npartitions=1)


# ---- pass 2: the data window ---------------------------------------------------------------------


@dataclass
class _DriftPiece:
    summary: WindowSummary
    twice: pd.DataFrame  # rows of ids logged more than once, with their scan position
    sample: pd.DataFrame  # bottom-k of hashed ids: a uniform sample of the partitions' rows
    keys: np.ndarray


def _inside_part(
    frame: pd.DataFrame,
    profile: ReferenceProfile,
    names: list[str],
    slots: dict[str, np.ndarray],
    dropped_ids: list[str],
) -> dict[str, np.ndarray]:
    if dropped_ids:  # those rows are counted once, from the client's copy
        frame = frame[~frame[ID].isin(dropped_ids).to_numpy()]
    return _inside(profile, frame, names, slots)


def _inside(
    profile: ReferenceProfile, frame: pd.DataFrame, names: list[str], slots: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    out = {}
    for name, where in slots.items():
        if name == SCORE_FEATURE:
            ref, column = profile.scores, frame["probability"]
        else:
            feature = profile.features[name]
            assert isinstance(feature, NumericProfile)
            ref, column = feature, frame[name]
        out[name] = values_in(ref, column.to_numpy(dtype=np.float64), where)
    return out


def _drift_part(
    frame: pd.DataFrame,
    number: int,
    profile: ReferenceProfile,
    names: list[str],
    dropped_ids: list[str],
    sample_rows: int,
) -> _DriftPiece:
    frame = frame.reset_index(drop=True)
    twice = frame[ID].isin(dropped_ids).to_numpy() if dropped_ids else np.zeros(len(frame), bool)
    kept = frame[~twice]
    summary = summarize(
        profile,
        kept[names].to_numpy(dtype=np.float64),
        kept["probability"].to_numpy(dtype=np.float64),
    )
    repeated = frame[twice].copy()
    repeated[ORDER] = (np.int64(number) << np.int64(32)) + np.flatnonzero(twice).astype(np.int64)
    sample, keys = _bottom(frame.drop_duplicates(ID), sample_rows)
    return _DriftPiece(summary, repeated, sample, keys)


def _bottom(
    frame: pd.DataFrame, rows: int, keys: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``rows`` rows of smallest key, the key a hash of the inference id: a uniform sample
    of the distinct ids whatever the partitioning (a prediction's copies share their key)."""
    if rows == 0:  # no HTML report asked for: no hashing
        return frame.iloc[:0], np.empty(0, np.uint64)
    if keys is None:
        keys = pd.util.hash_pandas_object(frame[ID], index=False).to_numpy()
    chosen = np.argsort(keys, kind="stable")[:rows]
    return frame.iloc[chosen], keys[chosen]


def _merge_drift(a: _DriftPiece, b: _DriftPiece, sample_rows: int) -> _DriftPiece:
    sample = pd.concat([a.sample, b.sample], ignore_index=True)
    keys = np.concatenate([a.keys, b.keys])
    once = ~sample[ID].duplicated().to_numpy()
    sample, keys = _bottom(sample[once], sample_rows, keys[once])
    return _DriftPiece(
        a.summary.merge(b.summary),
        pd.concat([a.twice, b.twice], ignore_index=True),
        sample,
        keys,
    )
