"""Settings of the data, the lake, MLflow, training, the gate and monitoring."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from fraudops.config.base import DecisionPolicy, Section, ThresholdPolicy, TrainerName


class DriftRule(Section):
    """How one feature is shifted in a drifted data set (seed 000's drift_generation)."""

    type: Literal["multiplicative", "additive"] = "multiplicative"
    factor: float = 1.0
    shift: float = 0.0
    noise: float = 0.0


def _seed_default_drift() -> dict[str, DriftRule]:
    return {
        "transaction_amount": DriftRule(type="multiplicative", factor=1.4, noise=0.1),
        "distance_from_home_km": DriftRule(type="multiplicative", factor=2.0, noise=0.3),
        "velocity_score": DriftRule(type="multiplicative", factor=1.5, noise=0.2),
        "num_transactions_24h": DriftRule(type="additive", shift=3, noise=1),
    }


def _seed_variable_patterns() -> dict[str, dict[str, DriftRule]]:
    m, a = "multiplicative", "additive"
    return {
        "run1": {  # baseline, minimal drift
            "transaction_amount": DriftRule(type=m, factor=1.05, noise=0.05),
            "distance_from_home_km": DriftRule(type=m, factor=1.1, noise=0.1),
        },
        "run2": {  # travel surge
            "distance_from_home_km": DriftRule(type=m, factor=3.5, noise=0.5),
            "velocity_score": DriftRule(type=m, factor=1.3, noise=0.2),
        },
        "run3": {  # credit-limit system change
            "credit_limit": DriftRule(type=m, factor=8.0, noise=2.0),
            "merchant_category_code": DriftRule(type=a, shift=500, noise=200),
        },
        "run4": {  # high-velocity period
            "velocity_score": DriftRule(type=m, factor=2.5, noise=0.4),
            "num_transactions_24h": DriftRule(type=a, shift=5, noise=2),
        },
        "run5": {  # recovery
            "transaction_amount": DriftRule(type=m, factor=1.2, noise=0.15),
        },
        "run6": {  # new-user cohort
            "account_age_days": DriftRule(type=m, factor=0.3, noise=0.1),
        },
    }


class DataSettings(Section):
    rows: int = Field(284_080, ge=1, description="Rows of the synthetic training set (seed 000).")
    seed: int = Field(42, description="Random seed of the generator.")
    fraud_rate: float = Field(0.005, gt=0, lt=0.5, description="Share of fraudulent rows.")
    customers: int = Field(20_000, ge=1, description="Distinct customers in the synthetic set.")
    start: str = Field("2025-01-01", description="First day of the synthetic time range (UTC).")
    months: int = Field(12, ge=1, description="Length of the synthetic time range.")
    drift_samples: int = Field(5_000, ge=1, description="Rows of a drifted set (seed: 5000).")
    drift_seed: int = Field(123, description="Random seed of drifted sets (seed: 123).")
    default_drift: dict[str, DriftRule] = Field(default_factory=_seed_default_drift)
    drift_patterns: dict[str, dict[str, DriftRule]] = Field(default_factory=_seed_variable_patterns)


class LakeSettings(Section):
    catalog_name: str = "fraudops"
    catalog_uri: str | None = Field(
        None, description="SQLAlchemy URI of the Iceberg SQL catalog; default SQLite under home."
    )
    warehouse: str | None = Field(
        None,
        description="Warehouse location: a folder, file://... or s3://bucket/prefix (see the s3 "
        "section; the bucket must exist, fraudops never creates one); default a home folder.",
    )


class MlflowSettings(Section):
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite store under home."
    )
    artifact_location: str | None = Field(
        None,
        description="Artifact root for new experiments: a folder, file://... or "
        "s3://bucket/prefix (needs boto3; endpoint and credentials from the s3 section); "
        "default a home folder.",
    )
    training_experiment: str = "fraudops-training"
    monitoring_experiment: str = "fraudops-monitoring"
    model_name_prefix: str = Field(
        "fraudops", description="Registered model name is '<prefix>-<spec>'."
    )
    champion_alias: str = "champion"


class XGBoostParams(Section):
    n_estimators: int = 400
    max_depth: int = 6
    learning_rate: float = 0.08
    subsample: float = 0.9
    colsample_bytree: float = 0.8
    min_child_weight: float = 1.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 40
    scale_pos_weight: float | None = Field(
        None, description="Default: negatives / positives of the training slice."
    )
    n_jobs: int = 0
    model_format: Literal["ubj", "json"] = "ubj"


class LogRegParams(Section):
    C: float = 0.1
    max_iter: int = 1000
    smote: bool = True
    smote_ratio: float = Field(0.1, gt=0, le=1, description="Minority / majority after SMOTE.")
    bins: int = Field(10, ge=2, description="Quantile bins of the binned amount/time features.")
    binned_features: list[str] | None = Field(
        None, description="Features also given as one-hot quantile bins; default: the amount."
    )


class TrainingSettings(Section):
    trainer: TrainerName = "xgboost"
    seed: int = 42
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="Slice before the holdout.")
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5, description="Latest slice, for evaluation.")
    decision: DecisionPolicy = Field(
        "expected_loss",
        description=(
            "The operating point: expected_loss flags when the calibrated probability x the "
            "amount (cost_fn without an amount column) reaches cost_fp; alert_budget the top "
            "alerts_per_day scores a day; best_f1/min_cost/target_recall one score cut."
        ),
    )
    # Configurations written before ``decision`` keep working: a threshold_policy set without a
    # decision becomes the decision (model_validator below).
    threshold_policy: ThresholdPolicy = "best_f1"
    target_recall: float = Field(0.8, gt=0, le=1)
    alerts_per_day: int = Field(
        10,
        ge=1,
        description=(
            "Investigators' daily alert budget: the alert_budget decision's size and the k of "
            "precision@k and card precision@k per day. 10 suits the demo's 1,000 transactions a "
            "day (~5 frauds a day; the expected-loss point flags ~7)."
        ),
    )
    cost_fn: float = Field(100.0, ge=0, description="Cost of a missed fraud.")
    cost_fp: float = Field(5.0, ge=0, description="Cost of a false alarm (review, friction).")
    xgboost: XGBoostParams = Field(default_factory=XGBoostParams)
    logreg: LogRegParams = Field(default_factory=LogRegParams)

    @model_validator(mode="after")
    def _threshold_policy_alone(self) -> TrainingSettings:
        if "threshold_policy" in self.model_fields_set and "decision" not in self.model_fields_set:
            self.decision = self.threshold_policy
        return self


class GateSettings(Section):
    min_roc_auc: float = 0.85
    min_pr_auc: float = 0.50
    min_recall: dict[str, float] = Field(
        default_factory=lambda: {"logreg": 0.60},
        description="Per-trainer recall floor (seed 003: 0.60 for the recall-oriented model).",
    )
    champion_metrics: list[str] = Field(default_factory=lambda: ["roc_auc", "pr_auc"])
    champion_margin: float = Field(
        0.005, ge=0, description="A challenger may trail the champion by at most this much."
    )


class MonitoringSettings(Section):
    psi_threshold: float = 0.2
    psi_warning: float = 0.1
    ks_pvalue: float = 0.05
    ks_moderate: float = 0.1
    psi_bins: int = 10
    psi_floor: float = 0.0001
    roc_auc_degradation: float = Field(
        0.05, description="Alert at a relative ROC-AUC drop above this."
    )
    data_window_days: int = 7
    performance_window_days: int = Field(
        60,
        ge=1,
        description="Performance window. Longer than the seed's 30 days: legitimate labels take "
        "up to 30 days, so a 30-day window holds only ~6 mature prediction days.",
    )
    min_samples: int = 100
    skew_alert_share: float = Field(
        0.001,
        ge=0,
        le=1,
        description="Alert when more than this share of the window's served rows have derived "
        "features that differ from an offline recomputation (training-serving skew).",
    )
    min_positives: int = Field(
        100,
        ge=1,
        description="Frauds the mature labelled rows need before performance decides anything.",
    )
    schedule: str = Field("0 2 * * *", description="Drift check cron (UTC), seed: daily 02:00.")
    html_reports: Literal["on_drift", "always", "never"] = Field(
        "on_drift", description="When a run makes Evidently's HTML reports (seconds each)."
    )
    html_sample_rows: int = Field(
        20_000, gt=0, description="Rows per side in the Evidently reports (they render them all)."
    )
    ks_critical: float = Field(
        0.2, description="KS statistic (or categorical total variation) of a CRITICAL feature."
    )
    concept_drift_alpha: float = Field(
        0.001,
        gt=0,
        lt=1,
        description="Concept drift is suspected when the confirmed frauds of the data window are "
        "flagged less than CBPE expects with a one-sided binomial p-value below this.",
    )
    concept_drift_min_confirmed: int = Field(
        10, ge=1, description="Confirmed frauds the concept-drift test needs."
    )
    cbpe_reference_positives: int = Field(
        50,
        ge=0,
        description="CBPE recalibrates on the champion's own mature labelled traffic before the "
        "data window (the reference period) once it holds this many frauds; before that, the "
        "calibrator stored with the model (0: always the stored one).",
    )
    cbpe_draws: int = Field(
        200, ge=20, description="Label draws behind CBPE's 95% intervals (per day and window)."
    )
    feature_thresholds: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per-feature drift thresholds overriding psi_threshold / ks_pvalue: "
        "{feature: {psi: 0.3, ks_pvalue: 0.01}}.",
    )

    @field_validator("feature_thresholds")
    @classmethod
    def _known_threshold_keys(
        cls, value: dict[str, dict[str, float]]
    ) -> dict[str, dict[str, float]]:
        for feature, limits in value.items():
            unknown = sorted(set(limits) - {"psi", "ks_pvalue"})
            if unknown:
                raise ValueError(
                    f"feature_thresholds[{feature!r}]: unknown keys {unknown} "
                    "(allowed: psi, ks_pvalue)"
                )
        return value
