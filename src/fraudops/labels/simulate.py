"""Seed 000's ground-truth simulator: labels for logged predictions, arriving over time.

For each prediction that has no label yet, the simulator decides — from a hash of the seed and
the ``inference_id``, so the same prediction always gets the same outcome — whether the label
agrees with the prediction (with probability the *effective accuracy*), how long confirmation
takes (fraud ``labels.fraud_delay_*`` = 1–7 days, legitimate ``labels.legit_delay_*`` = 1–30
days after the request, uniform) and who confirms it (``labels.*_sources``, by weight).

Effective accuracy (seed): ``accuracy - feature_drift_impact - model_drift_mag``, floored at
``min_accuracy`` (50%) when drift lowers it; ``feature_drift_mag`` / ``feature_drift_count`` are
recorded only. With ``drift_from`` the drift applies to predictions from that time on; earlier
ones keep the base accuracy.

**Labels arrive over time**: an event whose ``confirmed_at`` is after ``now`` is not written —
it has not happened yet. Run the simulator again later (or with a later ``--now``) and the
labels confirmed since then are written; because the outcomes are seeded per prediction, a later
run writes the same events the earlier one held back, never different ones.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fraudops.config import LabelsSettings
from fraudops.errors import ConfigError
from fraudops.labels.ingest import LabelEvent, ingest_events
from fraudops.labels.store import jsonable
from fraudops.lake.catalog import Lake
from fraudops.lake.commits import CommitListeners
from fraudops.lake.schemas import LABELS, PREDICTIONS
from fraudops.timeutil import as_utc

_DAY_S = 86_400.0
_UNIT = float(2**53)


@dataclass
class SimulationReport:
    spec: str
    now: dt.datetime
    seed: int
    accuracy: float
    effective_accuracy: float
    drift: dict[str, Any]
    predictions: int = 0  # logged predictions with a decision
    already_labelled: int = 0
    simulated: int = 0  # events drawn for the unlabelled ones
    written: int = 0  # of those, confirmed by `now` and appended (0 on a dry run)
    pending: int = 0  # confirmed after `now`: written by a later run
    next_confirmation: dt.datetime | None = None
    labels: dict[str, int] = field(default_factory=dict)  # of the due events
    # Share of all drawn labels equal to the prediction (≈ the effective accuracy). Among the
    # due ones it is lower early on: fraud is confirmed sooner, so flipped-to-fraud labels of
    # legitimate predictions arrive first.
    agreement: float | None = None
    sources: dict[str, int] = field(default_factory=dict)
    delay_days: dict[str, list[float]] = field(default_factory=dict)  # [min, max] per label
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(asdict(self)))


def effective_accuracy(
    config: LabelsSettings,
    *,
    accuracy: float | None = None,
    feature_drift_impact: float | None = None,
    model_drift_mag: float | None = None,
) -> float:
    """The seed's rule: base accuracy minus the drift losses, floored at ``min_accuracy``."""
    base = config.accuracy if accuracy is None else accuracy
    impact = config.feature_drift_impact if feature_drift_impact is None else feature_drift_impact
    model = config.model_drift_mag if model_drift_mag is None else model_drift_mag
    for name, value in (
        ("accuracy", base),
        ("feature_drift_impact", impact),
        ("model_drift_mag", model),
    ):
        if not 0 <= value <= 1:
            raise ConfigError(f"{name} must be between 0 and 1, got {value}")
    loss = impact + model
    return base if loss == 0 else max(config.min_accuracy, base - loss)


def simulate_labels(
    lake: Lake,
    *,
    accuracy: float | None = None,
    seed: int | None = None,
    now: dt.datetime | None = None,
    feature_drift_impact: float | None = None,
    model_drift_mag: float | None = None,
    drift_from: dt.datetime | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    listeners: CommitListeners | None = None,
) -> SimulationReport:
    """Simulate and append the label events of unlabelled predictions due by ``now``;
    ``listeners`` are told what was committed (``Runtime.commits``)."""
    config = lake.settings.labels
    now = as_utc(now)
    seed = config.seed if seed is None else seed
    base = effective_accuracy(config, accuracy=accuracy)
    drifted = effective_accuracy(
        config,
        accuracy=accuracy,
        feature_drift_impact=feature_drift_impact,
        model_drift_mag=model_drift_mag,
    )
    report = SimulationReport(
        spec=lake.spec.name,
        now=now,
        seed=seed,
        accuracy=base,
        effective_accuracy=drifted,
        drift={
            "feature_drift_mag": config.feature_drift_mag,
            "feature_drift_count": config.feature_drift_count,
            "feature_drift_impact": (
                config.feature_drift_impact
                if feature_drift_impact is None
                else feature_drift_impact
            ),
            "model_drift_mag": config.model_drift_mag
            if model_drift_mag is None
            else model_drift_mag,
            "drift_from": as_utc(drift_from) if drift_from is not None else None,
        },
        dry_run=dry_run,
    )
    predictions = lake.read_frame(
        PREDICTIONS, columns=["inference_id", "transaction_id", "request_time", "prediction"]
    )
    predictions = predictions[
        predictions["prediction"].notna() & predictions["request_time"].notna()
    ].drop_duplicates("inference_id")
    report.predictions = len(predictions)
    labelled = set(lake.read(LABELS, columns=["inference_id"])["inference_id"].to_pylist())
    todo = predictions[~predictions["inference_id"].isin(labelled)]
    report.already_labelled = report.predictions - len(todo)
    todo = todo.sort_values(["request_time", "inference_id"], kind="stable")
    if limit is not None:
        todo = todo.head(limit)
    draws = _draw(todo, config, seed, base, drifted, drift_from)
    report.simulated = len(draws)
    due = draws[draws["confirmed_at"] <= pd.Timestamp(now)]
    later = draws[draws["confirmed_at"] > pd.Timestamp(now)]
    report.pending = len(later)
    if len(later):
        report.next_confirmation = later["confirmed_at"].min().to_pydatetime()
    if len(draws):
        report.agreement = float((draws["label"] == draws["prediction"]).mean())
    _describe(report, due)
    if dry_run or due.empty:
        return report
    events = [
        LabelEvent(
            inference_id=row["inference_id"],
            transaction_id=row["transaction_id"],
            label=int(row["label"]),
            confirmed_at=row["confirmed_at"].to_pydatetime(),
            source=row["source"],
            notes=f"simulated (seed {seed}, accuracy {row['accuracy']:.2f})",
        )
        for row in _records(due)
    ]
    written = ingest_events(lake, events, now=now, origin="simulator", listeners=listeners)
    report.written = written.written
    return report


def _draw(
    todo: pd.DataFrame,
    config: LabelsSettings,
    seed: int,
    base: float,
    drifted: float,
    drift_from: dt.datetime | None,
) -> pd.DataFrame:
    """One outcome per prediction, from uniforms hashed from (seed, inference_id, purpose)."""
    ids = todo["inference_id"].to_numpy(dtype=object)
    agree_u, delay_u, source_u = (
        _uniform(ids, seed, purpose) for purpose in ("agree", "delay", "sourc")
    )
    request_time = pd.to_datetime(todo["request_time"], utc=True)
    accuracy = np.full(len(todo), base)
    if drift_from is None:
        accuracy[:] = drifted
    else:
        accuracy[(request_time >= pd.Timestamp(as_utc(drift_from))).to_numpy()] = drifted
    prediction = todo["prediction"].to_numpy(dtype=np.int64)
    label = np.where(agree_u < accuracy, prediction, 1 - prediction)
    delay_days, confirmed_at, source = _confirmation(request_time, label, delay_u, source_u, config)
    return pd.DataFrame(
        {
            "inference_id": todo["inference_id"].to_numpy(),
            "transaction_id": todo["transaction_id"].to_numpy(),
            "prediction": prediction,
            "label": label,
            "accuracy": accuracy,
            "delay_days": delay_days,
            "confirmed_at": confirmed_at.to_numpy(),
            "source": source,
        }
    ).assign(confirmed_at=lambda f: pd.to_datetime(f["confirmed_at"], utc=True))


def true_label_events(truth: pd.DataFrame, config: LabelsSettings, seed: int) -> pd.DataFrame:
    """When and by whom known outcomes get confirmed, with the simulator's delays and sources.

    ``truth``: inference_id, transaction_id, request_time, label (the real outcome, as a
    production simulation knows it). Adds delay_days, confirmed_at and source, seeded per
    transaction_id (inference ids are random: a re-run would confirm at other times), else
    per inference_id.
    """
    ids = truth["transaction_id"].fillna(truth["inference_id"]).to_numpy(dtype=object)
    delay_u, source_u = (_uniform(ids, seed, purpose) for purpose in ("delay", "sourc"))
    request_time = pd.to_datetime(truth["request_time"], utc=True)
    label = truth["label"].to_numpy(dtype=np.int64)
    delay_days, confirmed_at, source = _confirmation(request_time, label, delay_u, source_u, config)
    out = truth[["inference_id", "transaction_id", "label"]].reset_index(drop=True)
    out["delay_days"] = delay_days
    out["confirmed_at"] = pd.to_datetime(confirmed_at.to_numpy(), utc=True)
    out["source"] = source
    return out


def _confirmation(
    request_time: pd.Series,
    label: np.ndarray,
    delay_u: np.ndarray,
    source_u: np.ndarray,
    config: LabelsSettings,
) -> tuple[np.ndarray, pd.Series, np.ndarray]:
    """Delay (days), confirmation time and source of each label: fraud is confirmed within
    ``fraud_delay_*`` days, legitimate transactions within ``legit_delay_*``."""
    fraud = label == 1
    low = np.where(fraud, config.fraud_delay_min_days, config.legit_delay_min_days)
    high = np.where(fraud, config.fraud_delay_max_days, config.legit_delay_max_days)
    delay_days = low + delay_u * (high - low)
    confirmed_at = request_time + pd.to_timedelta(np.round(delay_days * _DAY_S * 1e6), unit="us")
    source = np.where(
        fraud,
        _pick(config.fraud_sources, source_u),
        _pick(config.legit_sources, source_u),
    )
    return delay_days, confirmed_at, source


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _uniform(ids: np.ndarray, seed: int, purpose: str) -> np.ndarray:
    """A uniform [0, 1) per id, fixed by (seed, purpose, id): reruns draw the same outcome."""
    if not len(ids):
        return np.zeros(0)
    key = f"{seed & 0xFFFFFFFFFFF:011x}{purpose:.5}".ljust(16, "_")[:16]
    hashed = pd.util.hash_array(ids, hash_key=key, categorize=False)
    return (hashed >> np.uint64(11)).astype(np.float64) / _UNIT


def _pick(weights: dict[str, float], u: np.ndarray) -> np.ndarray:
    names = list(weights)
    cumulative = np.cumsum([weights[n] for n in names], dtype=float)
    cumulative /= cumulative[-1]
    index = np.minimum(np.searchsorted(cumulative, u, side="right"), len(names) - 1)
    return np.asarray(names, dtype=object)[index]


def _describe(report: SimulationReport, due: pd.DataFrame) -> None:
    if due.empty:
        return
    fraud = due["label"] == 1
    report.labels = {"fraud": int(fraud.sum()), "legitimate": int((~fraud).sum())}
    report.sources = dict(sorted(Counter(due["source"]).items()))
    for name, part in (("fraud", due[fraud]), ("legitimate", due[~fraud])):
        if len(part):
            report.delay_days[name] = [
                round(float(part["delay_days"].min()), 4),
                round(float(part["delay_days"].max()), 4),
            ]
