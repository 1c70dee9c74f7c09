"""A raw spec's history as the lake holds it: loaded transactions, and served ones with their
label events - what warms the online store when a server starts, and what the skew check
recomputes the served features from.

Served transactions are the ``predictions`` rows that carry the raw columns (the transaction's
time and keys, lake.schemas.served_raw_columns) under their ``transaction_id`` (the id the
online store recorded them with). A loaded transaction's label is known at its own time, a
served one's from its label events in ``labels`` (``confirmed_at``, in the order ingested), as
the online store keeps them. A transaction id both loaded and served is the served one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudops.errors import ValidationError
from fraudops.features.offline import derive, needed_columns, to_micros
from fraudops.features.online import CONFIRMED_AT_COLUMN, OnlineStore
from fraudops.spec import FeatureSpec

if TYPE_CHECKING:
    from fraudops.lake import Lake

SOURCE = "_source"  # "lake" or "served"
INFERENCE_ID = "inference_id"
REQUEST_TIME = "request_time"


@dataclass(frozen=True)
class History:
    """Every known transaction (``frame``: the id column of ``id_spec``, the timestamp, keys,
    value columns, ``_source``, and for served rows their inference id, request time and the
    logged features under ``logged_<name>``), and its label events (``label_events``: ``row``,
    ``is_fraud``, ``confirmed_at``: offline.derive's form)."""

    spec: FeatureSpec
    id_spec: FeatureSpec  # the spec with the id column the frame uses
    frame: pd.DataFrame
    label_events: pd.DataFrame

    @property
    def served(self) -> np.ndarray:
        return (self.frame[SOURCE] == "served").to_numpy()


def logged(name: str) -> str:
    return f"logged_{name}"


def read_history(lake: Lake, spec: FeatureSpec | None = None) -> History:
    """The lake's transactions and served predictions of ``spec`` (default: the lake's)."""
    from fraudops.lake.schemas import served_key_column, served_raw_columns, transaction_id_column

    spec = spec or lake.spec
    id_col = transaction_id_column(spec)
    id_spec = spec if spec.id_column == id_col else spec.model_copy(update={"id_column": id_col})
    inputs = [c for c in needed_columns(spec) if c not in (id_col, spec.label_column)]
    raw_cols = served_raw_columns(spec)
    missing = [c for c in raw_cols if c not in lake.table("predictions").schema().column_names]
    if missing:
        raise ValidationError(
            f"{lake.namespace}.predictions has no column(s) {missing}: upgrade it with "
            "`fraudops lake init` (served transactions keep their time and keys there)"
        )
    loaded = lake.read("transactions", [id_col, *inputs, spec.label_column]).to_pandas()
    values = [c for c in inputs if c != spec.timestamp_column and c not in spec.keys]
    key_cols = {k: served_key_column(spec, k) for k in spec.keys}
    pred_cols = list(
        dict.fromkeys(
            [
                INFERENCE_ID,
                REQUEST_TIME,
                "transaction_id",
                *raw_cols,
                *key_cols.values(),
                *values,
                *spec.feature_names,
            ]
        )
    )
    served = lake.read("predictions", pred_cols, f"{spec.timestamp_column} IS NOT NULL").to_pandas()
    served = served.sort_values([REQUEST_TIME, INFERENCE_ID], kind="stable")
    served_frame = pd.DataFrame(
        {
            id_col: served["transaction_id"].astype(str).to_numpy(),
            spec.timestamp_column: served[spec.timestamp_column].to_numpy(),
            **{k: served[col].to_numpy() for k, col in key_cols.items()},
            **{c: served[c].to_numpy() for c in values},
            INFERENCE_ID: served[INFERENCE_ID].to_numpy(),
            REQUEST_TIME: served[REQUEST_TIME].to_numpy(),
            **{logged(n): served[n].to_numpy() for n in spec.feature_names},
        }
    )
    served_frame[SOURCE] = "served"
    loaded = loaded.assign(**{SOURCE: "lake", id_col: loaded[id_col].astype(str)})
    frame = pd.concat([loaded, served_frame], ignore_index=True)
    if len(frame) and frame[spec.timestamp_column].dtype == object:
        frame[spec.timestamp_column] = pd.to_datetime(frame[spec.timestamp_column], utc=True)
    # A transaction served twice (or loaded then served): its last record is the one in force.
    frame = frame.drop_duplicates(id_col, keep="last").reset_index(drop=True)
    return History(spec, id_spec, frame, _label_events(lake, spec, frame, id_col))


def _label_events(lake: Lake, spec: FeatureSpec, frame: pd.DataFrame, id_col: str) -> pd.DataFrame:
    position = pd.Series(np.arange(len(frame)), index=frame[id_col].to_numpy())
    parts = []
    is_lake = (frame[SOURCE] == "lake").to_numpy()
    if spec.label_column in frame.columns:
        labels = pd.to_numeric(frame[spec.label_column], errors="coerce").to_numpy()
        rows = np.flatnonzero(is_lake & ~np.isnan(labels))
        parts.append(
            pd.DataFrame(
                {
                    "row": rows,
                    "is_fraud": labels[rows].astype(np.int64),
                    "confirmed_at": frame[spec.timestamp_column].to_numpy()[rows],
                }
            )
        )
    events = lake.read(
        "labels", ["event_id", "transaction_id", "label", "confirmed_at", "ingested_at"]
    ).to_pandas()
    events = events.sort_values(["ingested_at", "event_id"], kind="stable")
    events = events[events["transaction_id"].isin(position.index)]
    served_ids = set(frame.loc[~is_lake, id_col])
    events = events[events["transaction_id"].isin(served_ids)]
    if len(events):
        parts.append(
            pd.DataFrame(
                {
                    "row": position.loc[events["transaction_id"].to_numpy()].to_numpy(),
                    "is_fraud": events["label"].to_numpy(np.int64),
                    "confirmed_at": pd.to_datetime(events["confirmed_at"], utc=True).to_numpy(),
                }
            )
        )
    if not parts:
        return pd.DataFrame({"row": [], "is_fraud": [], "confirmed_at": []})
    out = pd.concat(parts, ignore_index=True)
    if spec.timestamp_kind == "datetime":
        out["confirmed_at"] = pd.to_datetime(out["confirmed_at"], utc=True)
    return out


def warm_from_lake(store: OnlineStore, lake: Lake) -> int:
    """Warm ``store`` from the lake: the last ``max(window + delay)`` (plus the store's late
    margin) before the NEWEST transaction the lake holds - loaded or served, not the wall clock,
    so a replay of past days works - with each key's last older transaction within the store's
    ``forget_us``, and the label events of them all. Returns the rows read by the store (0 on
    an empty lake)."""
    history = read_history(lake, store.spec)
    frame = history.frame
    if frame.empty:
        return 0
    spec, id_col = store.spec, history.id_spec.id_column or "transaction_id"
    times = to_micros(frame[spec.timestamp_column], spec.timestamp_kind, column="time")
    newest = int(times.max())
    keep = times > store.warm_horizon_us(newest)
    # A key idle longer than the store forgets (key_ttl + late) reads as new anyway: not warmed.
    older_rows = ~keep & (times >= newest - store.forget_us)
    for key in spec.keys:  # each key's last transaction before the horizon (time since last)
        older = pd.DataFrame({"k": frame[key].to_numpy(), "t": times, "i": frame[id_col]})
        older = older[older_rows].sort_values(["t", "i"], kind="stable")
        keep[older.drop_duplicates("k", keep="last").index.to_numpy()] = True
    rows = np.flatnonzero(keep)
    chosen = frame.iloc[rows].reset_index(drop=True)
    chosen["_pos"] = rows
    events = history.label_events
    events = events[events["row"].isin(rows)].rename(
        columns={"row": "_pos", "is_fraud": spec.label_column, "confirmed_at": CONFIRMED_AT_COLUMN}
    )
    events["_seq"] = np.arange(len(events))
    base = chosen.drop(columns=[spec.label_column], errors="ignore")
    warm = base.merge(events, on="_pos", how="left").sort_values(["_pos", "_seq"], kind="stable")
    return store.warm(warm.drop(columns=["_pos", "_seq"]))


def derive_as_served(history: History, emit: np.ndarray | None = None) -> pd.DataFrame:
    """The derived features of the served rows (``emit``: a mask of them, default all) as the
    online store could know them: point in time, like ``offline.derive`` over the history, and
    limited to the transactions that had arrived when the row was served (its request order:
    ``request_time``, then the time-ordered inference id). Only the rows that an earlier
    transaction arriving later could change are recomputed on their own."""
    frame, spec = history.frame, history.id_spec
    served = history.served
    emit = served if emit is None else (np.asarray(emit, dtype=bool) & served)
    out = derive(frame, spec, emit=emit, label_events=history.label_events)
    times = to_micros(frame[spec.timestamp_column], spec.timestamp_kind, column="time")
    positions = np.flatnonzero(served)
    arrival = np.zeros(len(frame), dtype=np.int64)  # loaded rows: known from the start
    ranked = frame.iloc[positions].sort_values([REQUEST_TIME, INFERENCE_ID], kind="stable")
    arrival[ranked.index.to_numpy()] = np.arange(1, len(positions) + 1)
    by_arrival = ranked.index.to_numpy()
    # The earliest time among the rows that arrived after each served row.
    later_min = np.minimum.accumulate(times[by_arrival][::-1])[::-1]
    later_min = np.append(later_min[1:], np.iinfo(np.int64).max)
    late_before = np.zeros(len(frame), dtype=bool)
    late_before[by_arrival] = later_min <= times[by_arrival]
    for i in np.flatnonzero(late_before & emit):
        known = (arrival == 0) | (served & (arrival <= arrival[i]))
        sub = frame[known].reset_index()
        remap = pd.Series(np.arange(len(sub)), index=sub["index"].to_numpy())
        events = history.label_events
        events = events[known[events["row"].to_numpy(dtype=np.int64)]].copy()
        events["row"] = remap.loc[events["row"].to_numpy()].to_numpy()
        one = derive(sub, spec, emit=(sub["index"] == i).to_numpy(), label_events=events)
        out.loc[i] = one.iloc[0].to_numpy()
    return out
