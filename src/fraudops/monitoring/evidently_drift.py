"""Evidently's data-drift report made to say what the monitoring run said.

Evidently's default tests (Wasserstein / Jensen–Shannon against a sample of the training data,
half the columns drifted for a dataset verdict) disagree with the run's: a run that found drift
on 7 of 30 features used to link a report saying "not detected", 4 of 30. Here each column's test
is the run's own rule (``monitoring.drift``: PSI at its threshold, or the KS p-value for numeric
features / the chi-square p-value for categorical ones under ``ks_pvalue``, both per feature
overridable in ``monitoring.feature_thresholds``), computed by the run's code against the
champion's reference profile, and handed to Evidently as a per-column method
(``DataDriftPreset(per_column_method=..., per_column_threshold=...)``): its drifted-column count
is the run's. The run's dataset verdict is "some feature at alarm level" (MODERATE/CRITICAL or PSI
at its threshold), which Evidently can only say as a share of drifted columns: ``drift_share`` is
set so its share rule gives the run's verdict.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from fraudops.monitoring.drift import DriftReport, FeatureDrift

if TYPE_CHECKING:
    from evidently.presets import DataDriftPreset

METHOD_PREFIX = "fraudops"


def run_drift_preset(report: DriftReport) -> DataDriftPreset:
    """A ``DataDriftPreset`` whose column tests and dataset verdict are ``report``'s."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType
    from evidently.presets import DataDriftPreset

    methods: dict[str, Any] = {}
    thresholds: dict[str, float] = {}
    for feature in report.features:
        test = StatTest(
            name=f"{METHOD_PREFIX}:{feature.feature}",
            display_name=method_label(feature),
            allowed_feature_types=[ColumnType.Numerical, ColumnType.Categorical],
            default_threshold=feature.psi_threshold,
        )
        # Registered under the column's name: a later report of the same column replaces it.
        register_stattest(test, default_impl=partial(_run_verdict, feature.psi, feature.drifted))
        methods[feature.feature] = test
        thresholds[feature.feature] = feature.psi_threshold
    return DataDriftPreset(
        columns=[f.feature for f in report.features],
        drift_share=drift_share(report),
        per_column_method=methods,
        per_column_threshold=thresholds,
    )


def method_label(feature: FeatureDrift) -> str:
    test = "KS" if feature.ks_pvalue is not None else "chi-square"
    return f"PSI ≥ {feature.psi_threshold:g} or {test} p < {feature.pvalue_threshold:g}"


def drift_share(report: DriftReport) -> float:
    """The share of drifted columns at which Evidently's verdict is the run's."""
    n, drifted = report.features_analyzed, report.drifted_count
    if report.data_drift_detected:
        return max(drifted, 1) / n
    return (drifted + 0.5) / n  # just above the drifted share: "not detected"


def _run_verdict(
    psi: float, drifted: bool, reference: Any, current: Any, feature_type: Any, threshold: float
) -> tuple[float, bool]:
    """Evidently's stattest signature; the score shown is the run's PSI, the verdict its own."""
    return psi, drifted


def drifted_columns(snapshot: dict[str, Any]) -> tuple[int, float]:
    """The drifted-column count and share of an Evidently drift report (``Snapshot.dict()``)."""
    for metric in snapshot.get("metrics", []):
        value = metric.get("value")
        if (
            isinstance(value, dict)
            and {"count", "share"} <= set(value)
            and "Drift" in str(metric.get("metric_id", metric.get("metric_name", "")))
        ):
            return int(value["count"]), float(value["share"])
    raise KeyError("no DriftedColumnsCount in the report")
