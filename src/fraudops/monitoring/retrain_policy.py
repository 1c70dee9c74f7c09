"""The retrain policy: which findings of a monitoring run call for a retrain (``retrain.*``).

Drift on at least ``on_drifted_features`` features at alarm level (MODERATE/CRITICAL, or PSI at
its threshold), degradation of the mature cohorts, mature recall under ``min_recall``, concept
drift suspected by the fast signals (``on_concept_drift``), or a champion older than
``every_days``. Pure: the reports in, the reasons out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fraudops.config import Settings
from fraudops.monitoring.drift import CRITICAL, MODERATE, DriftReport
from fraudops.monitoring.performance import PerformanceReport

ReasonKind = Literal[
    "data_drift", "degradation", "low_recall", "champion_age", "concept_drift", "follow_up"
]


@dataclass(frozen=True)
class RetrainReason:
    kind: ReasonKind
    text: str  # what model_events, the MLflow run and the CLI say

    def __str__(self) -> str:
        return self.text


def alarmed_features(settings: Settings, drift: DriftReport | None) -> list[str]:
    """Features of a drift report at alarm level: MODERATE/CRITICAL, or PSI at its threshold
    (the seed's per-feature p < 0.05 alone is not an alarm: it fires on clean windows)."""
    if drift is None:
        return []
    return [
        f.feature
        for f in drift.features
        if f.severity in (MODERATE, CRITICAL)
        or f.psi >= (f.psi_threshold or settings.monitoring.psi_threshold)
    ]


def retrain_reasons(
    settings: Settings,
    drift: DriftReport | None,
    performance: PerformanceReport,
    *,
    champion_age_days: float | None = None,
    concept_drift: str | None = None,
    follow_up: str | None = None,
) -> list[RetrainReason]:
    """The policy's reasons to retrain on a monitoring run's findings (empty: none).
    ``concept_drift``: why the run suspects concept drift (None: it does not); ``follow_up``:
    why a concept-drift fix is followed up (monitoring/cooldown.py)."""
    cfg = settings.retrain
    reasons = []
    alarmed = alarmed_features(settings, drift)
    if cfg.on_drifted_features and len(alarmed) >= cfg.on_drifted_features:
        reasons.append(
            RetrainReason(
                "data_drift", f"data drift on {len(alarmed)} features ({', '.join(alarmed[:6])})"
            )
        )
    metrics = performance.metrics or {}
    if cfg.on_degradation and performance.degraded:
        reasons.append(
            RetrainReason(
                "degradation",
                f"mature cohorts degraded: ROC-AUC {metrics.get('roc_auc', float('nan')):.4f}, "
                f"{performance.degradation_pct or 0.0:.1f}% below the baseline",
            )
        )
    recall = metrics.get("recall")
    if cfg.min_recall is not None and recall is not None and recall < cfg.min_recall:
        reasons.append(
            RetrainReason(
                "low_recall",
                f"mature recall {recall:.3f} below retrain.min_recall {cfg.min_recall}",
            )
        )
    if cfg.on_concept_drift and concept_drift is not None:
        reasons.append(RetrainReason("concept_drift", f"concept drift suspected: {concept_drift}"))
    if follow_up is not None:
        reasons.append(RetrainReason("follow_up", follow_up))
    if cfg.every_days is not None and (champion_age_days or 0.0) >= cfg.every_days:
        reasons.append(
            RetrainReason(
                "champion_age",
                f"champion is {champion_age_days:.0f} days old "
                f"(retrain.every_days {cfg.every_days:g})",
            )
        )
    return reasons
