"""What a monitoring run found: the typed result the retrain policy, the alert and the CLI read.

``to_dict()`` (the `--json` output, ``drift_summary.json``) and ``summary()`` (the
``monitoring_runs.summary`` column) are the JSON edges; everything else reads the fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from fraudops.alerting.dispatch import AlertOutcome
from fraudops.alerting.message import AlertSummary, DriftedFeature, make_summary
from fraudops.monitoring.drift import DriftReport
from fraudops.monitoring.performance import PerformanceReport
from fraudops.monitoring.shadow import ShadowReport
from fraudops.monitoring.signals import FastSignals
from fraudops.monitoring.skew import SkewReport

Status = Literal["drift", "ok", "insufficient_data"]
# The figures of the mature cohorts an alert carries, in its order.
ALERT_METRICS = ("roc_auc", "pr_auc", "recall", "precision")


@dataclass(frozen=True)
class Window:
    """``start < request_time <= end``: the predictions a check read."""

    start: datetime
    end: datetime
    days: int
    predictions: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "predictions": self.predictions,
        }


@dataclass
class MonitoringResult:
    run_id: str
    spec: str
    model_name: str
    model_version: str
    as_of: datetime
    data_window: Window
    performance_window: Window
    drift: DriftReport | None  # None: fewer than monitoring.min_samples predictions
    performance: PerformanceReport
    data_drift_detected: bool
    model_drift_detected: bool
    status: Status
    # Confirmed-fraud recall, CBPE and the concept-drift suspicion (None: not gathered).
    signals: FastSignals | None = None
    reports: dict[str, str] = field(default_factory=dict)  # name -> path
    alert: AlertOutcome | None = None
    mlflow_run_id: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    skew: SkewReport | None = None  # derived features only (monitoring/skew.py)

    @property
    def shadow(self) -> ShadowReport | None:
        return self.performance.shadow

    @property
    def concept_drift_suspected(self) -> bool:
        return bool(self.signals and self.signals.concept_drift_suspected)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "spec": self.spec,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "as_of": self.as_of.isoformat(),
            "data_window": self.data_window.to_dict(),
            "performance_window": self.performance_window.to_dict(),
            "drift": None if self.drift is None else self.drift.to_dict(),
            "performance": self.performance.to_dict(),
            "data_drift_detected": self.data_drift_detected,
            "model_drift_detected": self.model_drift_detected,
            "status": self.status,
            "concept_drift_suspected": self.concept_drift_suspected,
            "signals": None if self.signals is None else self.signals.to_dict(),
            "skew": None if self.skew is None else self.skew.to_dict(),
            "reports": dict(self.reports),
            "alert": None if self.alert is None else self.alert.to_dict(),
            "mlflow_run_id": self.mlflow_run_id,
            "timings": dict(self.timings),
        }

    def alert_summary(self) -> AlertSummary:
        """What the alert says about this run."""
        drift = self.drift
        metrics = self.performance.metrics or {}
        return make_summary(
            run_id=self.run_id,
            as_of=self.as_of.isoformat(),
            model_name=self.model_name,
            model_version=self.model_version,
            features_analyzed=drift.features_analyzed if drift else 0,
            drifted_features=[
                DriftedFeature(f.feature, f.psi, f.ks_pvalue, f.severity)
                for f in (drift.features if drift else [])
                if f.drifted
            ],
            drifted_count=drift.drifted_count if drift else 0,
            drifted_share=drift.drifted_share if drift else 0.0,
            performance={
                **{key: metrics.get(key) for key in ALERT_METRICS},
                "baseline_roc_auc": self.performance.baseline_roc_auc,
                "degradation_pct": self.performance.degradation_pct,
            },
            data_drift_detected=self.data_drift_detected,
            model_drift_detected=self.model_drift_detected,
            concept_drift_suspected=self.concept_drift_suspected,
            concept_drift_reason=(
                self.signals.reason if self.signals and self.concept_drift_suspected else None
            ),
            reports=self.reports,
            mlflow_run_id=self.mlflow_run_id,
        )

    def summary(self) -> dict[str, Any]:
        """The ``monitoring_runs.summary`` column: the alert's figures plus the shadow verdicts."""
        drift = self.drift.to_dict() if self.drift is not None else {}
        metrics = self.performance.metrics or {}
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "model_name": self.model_name,
            "model_version": self.model_version,
            "features_analyzed": drift.get("features_analyzed", 0),
            "drifted_features": [
                {
                    "feature": f["feature"],
                    "psi": f["psi"],
                    "ks_pvalue": f.get("ks_pvalue"),
                    "severity": f["severity"],
                }
                for f in drift.get("features", [])
                if f.get("drifted")
            ],
            "drifted_count": drift.get("drifted_count", 0),
            "drifted_share": drift.get("drifted_share", 0.0),
            # Every figure of the mature cohorts (``Metrics.to_dict``: read back with
            # ``Metrics.from_dict``), the money and per-day ones included.
            "performance": {
                **{key: metrics.get(key) for key in ALERT_METRICS},
                **metrics,
                "baseline_roc_auc": self.performance.baseline_roc_auc,
                "degradation_pct": self.performance.degradation_pct,
            },
            "shadow": _shadow_summary(self.performance.shadow),
            "data_drift_detected": self.data_drift_detected,
            "model_drift_detected": self.model_drift_detected,
            "concept_drift_suspected": self.concept_drift_suspected,
            "signals": None if self.signals is None else self.signals.summary(),
            "reports": dict(self.reports),
            "mlflow_run_id": self.mlflow_run_id,
        }


def _shadow_summary(shadow: ShadowReport | None) -> list[dict[str, Any]] | None:
    """Each champion/challenger comparison, without the per-metric details."""
    if not shadow:
        return None
    return [
        {
            "champion_version": c.champion_version,
            "challenger_version": c.challenger_version,
            "rows": c.rows,
            "positives": c.positives,
            "better": c.better,
            "champion": c.champion,
            "challenger": c.challenger,
        }
        for c in shadow.comparisons
    ]
