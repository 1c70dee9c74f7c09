"""The one settings class.

Precedence, lowest first: package defaults (below) < ``fraudops.yaml`` in the working folder (or the
file given with ``--config`` / ``FRAUDOPS_CONFIG``) < ``FRAUDOPS_<SECTION>__<KEY>`` environment
variables. Every path, URI, threshold, window and schedule lives here, with the seeds' defaults.
All state lives under ``home`` (``FRAUDOPS_HOME``, default ``./fraudops-home``).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from fraudops.errors import ConfigError
from fraudops.spec import BUILTIN_SPECS, FeatureSpec

DEFAULT_CONFIG_FILE = "fraudops.yaml"
ENV_PREFIX = "FRAUDOPS_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DriftRule(_Section):
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


class DataSettings(_Section):
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


class LakeSettings(_Section):
    catalog_name: str = "fraudops"
    catalog_uri: str | None = Field(
        None, description="SQLAlchemy URI of the Iceberg SQL catalog; default SQLite under home."
    )
    warehouse: str | None = Field(None, description="Warehouse location; default a home folder.")


class MlflowSettings(_Section):
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; default a SQLite store under home."
    )
    artifact_location: str | None = Field(
        None, description="Artifact root for new experiments; default a home folder."
    )
    training_experiment: str = "fraudops-training"
    monitoring_experiment: str = "fraudops-monitoring"
    model_name_prefix: str = Field(
        "fraudops", description="Registered model name is '<prefix>-<spec>'."
    )
    champion_alias: str = "champion"


class XGBoostParams(_Section):
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


class LogRegParams(_Section):
    C: float = 0.1
    max_iter: int = 1000
    smote: bool = True
    smote_ratio: float = Field(0.1, gt=0, le=1, description="Minority / majority after SMOTE.")
    bins: int = Field(10, ge=2, description="Quantile bins of the binned amount/time features.")
    binned_features: list[str] | None = Field(
        None, description="Features also given as one-hot quantile bins; default: the amount."
    )


class TrainingSettings(_Section):
    trainer: Literal["xgboost", "logreg"] = "xgboost"
    seed: int = 42
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="Slice before the holdout.")
    holdout_fraction: float = Field(0.2, gt=0, lt=0.5, description="Latest slice, for evaluation.")
    threshold_policy: Literal["best_f1", "target_recall", "min_cost"] = "best_f1"
    target_recall: float = Field(0.8, gt=0, le=1)
    cost_fn: float = Field(100.0, ge=0, description="Cost of a missed fraud.")
    cost_fp: float = Field(5.0, ge=0, description="Cost of a false alarm (review, friction).")
    xgboost: XGBoostParams = Field(default_factory=XGBoostParams)
    logreg: LogRegParams = Field(default_factory=LogRegParams)


class GateSettings(_Section):
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


class MonitoringSettings(_Section):
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


class RiskTier(_Section):
    name: str
    min_probability: float = Field(ge=0, le=1)


def _default_risk_tiers() -> list[RiskTier]:
    return [
        RiskTier(name="low", min_probability=0.0),
        RiskTier(name="medium", min_probability=0.3),
        RiskTier(name="high", min_probability=0.7),
        RiskTier(name="critical", min_probability=0.9),
    ]


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(1, ge=1)
    tokens: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer tokens accepted on predict and admin routes; required off loopback.",
    )
    max_batch: int = Field(1000, ge=1, description="Most transactions in one /v1/predict call.")
    risk_tiers: list[RiskTier] = Field(
        default_factory=_default_risk_tiers,
        description="Tier = the last band whose min_probability the fraud probability reaches.",
    )
    explain_top_k: int = Field(5, ge=1, description="Reason codes returned with explain=true.")
    reload_interval_s: float = Field(
        2.0, gt=0, description="How often the server checks whether `champion` moved."
    )
    shadow_alias: str | None = Field(
        None,
        description="Shadow scoring: the registry alias (e.g. 'challenger') of a version that "
        "scores every request beside the champion; its score is logged, never returned.",
    )
    log_backend: Literal["spool", "redis", "none"] = Field(
        "spool", description="Where the inference log goes: local spool, Redis Streams, or off."
    )
    spool_dir: Path | None = Field(None, description="Spool folder; default <home>/spool/<spec>.")
    fsync_interval_s: float = Field(0.02, gt=0, description="Batched fsync period of the spool.")
    segment_max_bytes: int = Field(8 << 20, gt=0)
    seal_age_s: float = Field(1.0, gt=0, description="Seal a segment at this age for the writer.")
    spool_max_bytes: int = Field(
        1 << 30, gt=0, description="Spool bound: beyond it records are dropped (and counted)."
    )
    writer_batch_rows: int = Field(50_000, gt=0, description="Most records per lake commit.")
    writer_batch_age_s: float = Field(
        2.0, gt=0, description="Commit at least this often while records wait."
    )
    writer_retry_s: float = Field(2.0, gt=0, description="Wait after a failed lake commit.")
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_stream: str = Field("fraudops:predictions", description="Stream key (spec appended).")
    redis_group: str = "fraudops-log"
    redis_maxlen: int = Field(
        10_000_000, gt=0, description="Approximate stream bound (XADD MAXLEN ~)."
    )
    redis_claim_idle_ms: int = Field(
        30_000, gt=0, description="Reclaim entries pending this long on another consumer."
    )


def _default_fraud_sources() -> dict[str, float]:
    return {
        "chargeback": 0.45,
        "investigation": 0.30,
        "customer_report": 0.15,
        "merchant_report": 0.07,
        "law_enforcement": 0.03,
    }


def _default_legit_sources() -> dict[str, float]:
    return {"no_dispute": 0.60, "investigation": 0.25, "customer_report": 0.15}


class LabelsSettings(_Section):
    """Ground truth: the label simulator's knobs (seed 000's defaults) and label maturity."""

    accuracy: float = Field(
        0.85, ge=0, le=1, description="Simulator: share of labels that agree with the prediction."
    )
    fraud_delay_min_days: float = Field(1.0, ge=0, description="Fraud confirmed 1-7 days later.")
    fraud_delay_max_days: float = Field(7.0, ge=0)
    legit_delay_min_days: float = Field(1.0, ge=0, description="Legit confirmed 1-30 days later.")
    legit_delay_max_days: float = Field(30.0, ge=0)
    fraud_sources: dict[str, float] = Field(
        default_factory=_default_fraud_sources,
        description="Simulator: confirmation sources of fraud labels and their weights.",
    )
    legit_sources: dict[str, float] = Field(
        default_factory=_default_legit_sources,
        description="Simulator: confirmation sources of legitimate labels and their weights.",
    )
    feature_drift_mag: float = Field(0.0, ge=0, le=1, description="Seed: semantic, recorded only.")
    feature_drift_count: int = Field(0, ge=0, description="Seed: semantic, recorded only.")
    feature_drift_impact: float = Field(
        0.0, ge=0, le=1, description="Accuracy lost to feature drift (0.10: 10 points)."
    )
    model_drift_mag: float = Field(
        0.0, ge=0, le=1, description="Accuracy lost to model drift (0.15: 15 points)."
    )
    min_accuracy: float = Field(
        0.5, ge=0, le=1, description="Floor of the effective accuracy (seed: 50%)."
    )
    seed: int = Field(42, description="Simulator seed: the same seed gives the same labels.")
    mature_coverage: float = Field(
        0.8, gt=0, le=1, description="A prediction day is mature once this share is labelled."
    )
    max_batch: int = Field(10_000, ge=1, description="Most label events in one POST /v1/labels.")

    @model_validator(mode="after")
    def _check(self) -> LabelsSettings:
        for kind in ("fraud", "legit"):
            low = getattr(self, f"{kind}_delay_min_days")
            high = getattr(self, f"{kind}_delay_max_days")
            if low > high:
                raise ValueError(f"{kind}_delay_min_days {low} > {kind}_delay_max_days {high}")
            sources: dict[str, float] = getattr(self, f"{kind}_sources")
            if not sources or any(w < 0 for w in sources.values()) or not sum(sources.values()):
                raise ValueError(f"{kind}_sources needs weights >= 0 with a positive sum")
        return self


class AlertSettings(_Section):
    """Where drift/degradation alerts go (seed 000: SNS e-mail), how often, how hard we retry."""

    channels: list[Literal["log", "email", "webhook"]] = Field(
        ["log"],
        description="Channels every alert goes to: the log, e-mail over SMTP, a Slack webhook.",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = Field(None, description="SMTP login; none: no AUTH.")
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = Field(False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_timeout_s: float = Field(10.0, gt=0)
    email_from: str = "fraudops@localhost"
    email_to: list[str] = Field(default_factory=list, description="Recipients of alert e-mails.")
    webhook_url: SecretStr | None = Field(
        None, description="Slack-compatible incoming webhook (POST JSON {text, blocks}); secret."
    )
    webhook_timeout_s: float = Field(10.0, gt=0)
    cooldown_minutes: float = Field(
        360, ge=0, description="The same incident alerts again only after this long."
    )
    retries: int = Field(2, ge=0, description="Retries of a failed delivery after the first try.")
    retry_backoff_s: float = Field(
        1.0, ge=0, description="Wait before the first retry; doubles at each further retry."
    )

    @model_validator(mode="after")
    def _channels_configured(self) -> AlertSettings:
        if "email" in self.channels and not self.email_to:
            raise ValueError("channel 'email' needs alerts.email_to (one or more recipients)")
        if "webhook" in self.channels and not (
            self.webhook_url and self.webhook_url.get_secret_value()
        ):
            raise ValueError("channel 'webhook' needs alerts.webhook_url")
        return self


class SchedulerJob(_Section):
    cron: str | None = Field(
        None,
        description="Cron, UTC (5 fields; 6 with seconds first); drift_check: monitoring.schedule.",
    )
    command: list[str] = Field(description="The fraudops command to run, e.g. [monitor, run].")
    enabled: bool = True


def _default_jobs() -> dict[str, SchedulerJob]:
    return {"drift_check": SchedulerJob(command=["monitor", "run"])}


class SchedulerSettings(_Section):
    jobs: dict[str, SchedulerJob] = Field(
        default_factory=_default_jobs, description="Jobs `fraudops scheduler` runs."
    )
    job_timeout_s: float = Field(3600, gt=0, description="A job running longer is stopped.")


class RetrainSettings(_Section):
    """When monitoring retrains on its own, on what data, and what the challenger must show."""

    automatic: bool = Field(
        True, description="`fraudops monitor run` applies this policy (off: it only reports)."
    )
    on_drifted_features: int = Field(
        3, ge=0, description="Retrain on drift in at least this many features (0: never)."
    )
    on_degradation: bool = Field(
        True, description="Retrain when the mature cohorts show degradation (monitoring run)."
    )
    min_recall: float | None = Field(
        None, ge=0, le=1, description="Also retrain when mature cohorts' recall falls below this."
    )
    every_days: float | None = Field(
        None, gt=0, description="Also retrain when the champion is this many days old (schedule)."
    )
    cooldown_days: float = Field(
        14, ge=0, description="No automatic retrain within this many days of the last one."
    )
    window_days: int = Field(
        90, ge=1, description="Labelled predictions of this many days join the training set."
    )
    holdout_days: int = Field(
        14, ge=1, description="The latest mature labelled days: the holdout both models face."
    )
    base_rows: int | None = Field(
        100_000, ge=0, description="Latest rows of the lake's training data kept (null: all)."
    )
    recent_weight: float = Field(
        1.0, gt=0, description="Sample weight of a labelled prediction relative to a lake row."
    )
    half_life_days: float | None = Field(
        21,
        gt=0,
        description="Recency weighting: a training row this many days old weighs half (null: "
        "all rows weigh the same). After a concept drift the old rows teach the old fraud.",
    )
    min_weight: float = Field(
        0.05, gt=0, le=1, description="Floor of the recency weight: history stays a prior."
    )
    min_improvement: float = Field(
        0.0, ge=0, description="Lead a challenger needs over the champion on gate.champion_metrics."
    )
    promote_via: Literal["holdout", "shadow"] = Field(
        "holdout",
        description="holdout: a winning challenger is promoted at once; shadow: it scores live "
        "traffic under serving.shadow_alias first, promoted once it beats the champion there.",
    )
    min_holdout_positives: int = Field(
        20, ge=1, description="Fewer frauds in the recent holdout: no retrain (figures too noisy)."
    )


class ConceptDrift(_Section):
    """Seed 003's concept drift: labels flipped for high-value transactions."""

    amount_quantile: float = Field(
        0.99, gt=0, lt=1, description="High-value: amount at or above this quantile of the month."
    )
    flip_share: float = Field(
        1.0, gt=0, le=1, description="Share of the high-value legitimate rows that become fraud."
    )


class Scenario(_Section):
    description: str = ""
    data_drift_month: int | None = Field(
        None, ge=1, description="First month (1-based) of data drift; none: no data drift."
    )
    drift_pattern: str = Field("default", description="data.default_drift or a drift_patterns key.")
    concept_drift_month: int | None = Field(
        None, ge=1, description="First month (1-based) of concept drift; none: no concept drift."
    )
    concept_drift: ConceptDrift = Field(default_factory=ConceptDrift)


def _default_scenarios() -> dict[str, Scenario]:
    return {
        "drift": Scenario(
            description="Data drift (seed 000's shifted means) from month 4, concept drift "
            "(high-value transactions turn fraudulent) from month 7.",
            data_drift_month=4,
            concept_drift_month=7,
        ),
        "data_drift": Scenario(description="Data drift from month 4 only.", data_drift_month=4),
        "concept_drift": Scenario(
            description="Concept drift from month 4 only.", concept_drift_month=4
        ),
        "control": Scenario(description="No drift: the control run."),
    }


class SimulationSettings(_Section):
    months: int = Field(12, ge=1, description="Simulated months of production.")
    tx_per_day: int = Field(1000, ge=1, description="Transactions scored per simulated day.")
    scenario: str = Field("drift", description="The scenario `fraudops simulate` runs by default.")
    scenarios: dict[str, Scenario] = Field(default_factory=_default_scenarios)
    monitor_every_days: int = Field(7, ge=1, description="Monitoring run cadence (simulated).")
    seed: int = Field(7, description="Seed of the simulated traffic.")


def _builtin_specs() -> dict[str, FeatureSpec]:
    return dict(BUILTIN_SPECS)


class Settings(BaseSettings):
    """Everything fraudops can be told. See ``fraudops config show``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    home: Path = Field(Path("fraudops-home"), description="Folder that holds all state.")
    spec: str = Field("transactions30", description="Active feature spec (override: --spec).")
    specs: dict[str, FeatureSpec] = Field(
        default_factory=_builtin_specs, description="Built-in specs plus those of fraudops.yaml."
    )
    data: DataSettings = Field(default_factory=DataSettings)
    lake: LakeSettings = Field(default_factory=LakeSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    labels: LabelsSettings = Field(default_factory=LabelsSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)

    @field_validator("specs", mode="before")
    @classmethod
    def _merge_builtin_specs(cls, value: Any) -> Any:
        # A user's `specs:` adds to the built-ins (and may override one by name).
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {k: v.model_dump() for k, v in BUILTIN_SPECS.items()}
        for key, spec in value.items():
            raw = spec.model_dump() if isinstance(spec, FeatureSpec) else dict(spec)
            raw["name"] = key
            merged[key] = raw
        return merged

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _active_config_file.get()
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)

    # ---- derived locations -------------------------------------------------------------

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def catalog_uri(self) -> str:
        return self.lake.catalog_uri or f"sqlite:///{self.home_dir / 'lake' / 'catalog.db'}"

    @property
    def warehouse(self) -> str:
        return self.lake.warehouse or (self.home_dir / "lake" / "warehouse").as_uri()

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.home_dir / 'mlflow' / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str:
        return self.mlflow.artifact_location or (self.home_dir / "mlflow" / "artifacts").as_uri()

    def spool_dir(self, spec_name: str | None = None) -> Path:
        base = self.serving.spool_dir
        spec = self.feature_spec(spec_name).name
        return (base.expanduser().resolve() if base else self.home_dir / "spool") / spec

    def redis_stream(self, spec_name: str | None = None) -> str:
        return f"{self.serving.redis_stream}:{self.feature_spec(spec_name).name}"

    @property
    def data_dir(self) -> Path:
        return self.home_dir / "data"

    def registered_model_name(self, spec_name: str | None = None) -> str:
        return f"{self.mlflow.model_name_prefix}-{spec_name or self.spec}"

    def feature_spec(self, name: str | None = None) -> FeatureSpec:
        """The spec called ``name`` (default: the active one); a ConfigError names the choices."""
        key = name or self.spec
        try:
            return self.specs[key]
        except KeyError:
            known = ", ".join(sorted(self.specs))
            raise ConfigError(f"unknown spec {key!r}: known specs are {known}") from None


_active_config_file: ContextVar[Path | None] = ContextVar("fraudops_config_file", default=None)


def resolve_config_file(config: Path | str | None = None) -> Path | None:
    """The YAML file in force: ``config``, else ``$FRAUDOPS_CONFIG``, else ./fraudops.yaml."""
    explicit = config or os.environ.get(f"{ENV_PREFIX}CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    default = Path.cwd() / DEFAULT_CONFIG_FILE
    return default if default.is_file() else None


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults < YAML < environment (< explicit ``overrides``)."""
    from pydantic import ValidationError

    config_file = resolve_config_file(config)
    token = _active_config_file.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        where = f" (config file {config_file})" if config_file else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings{where}: {problems}") from None
    except Exception as exc:  # a YAML syntax error, say
        if config_file is None:
            raise
        raise ConfigError(f"cannot read config file {config_file}: {exc}") from None
    finally:
        _active_config_file.reset(token)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def describe_settings(settings: Settings, config: Path | str | None = None) -> list[dict[str, Any]]:
    """Every effective value with where it came from: default, the YAML file, or an env var."""
    config_file = resolve_config_file(config)
    yaml_keys: set[str] = set()
    if config_file is not None:
        yaml_keys = set(_flatten(YamlConfigSettingsSource(Settings, yaml_file=config_file)()))
    env_values = _flatten(EnvSettingsSource(Settings)())

    dumped = settings.model_dump(mode="json")
    # Specs are summarised: a spec is one entry, not 30 lines of feature attributes.
    specs = dumped.pop("specs")
    rows: list[dict[str, Any]] = []
    for key, value in _flatten(dumped).items():
        rows.append(
            {
                "key": key,
                "value": value,
                "source": _source_of(key, yaml_keys, env_values, config_file),
            }
        )
    for name, spec in specs.items():
        key = f"specs.{name}"
        source = "default" if name in BUILTIN_SPECS else str(config_file)
        if any(k.startswith(key) for k in yaml_keys):
            source = str(config_file)
        rows.append(
            {
                "key": key,
                "value": f"{len(spec['features'])} features, label {spec['label_column']!r}",
                "source": source,
            }
        )
    return rows


def _source_of(
    key: str, yaml_keys: set[str], env_values: dict[str, Any], config_file: Path | None
) -> str:
    for env_key in env_values:
        if key == env_key or key.startswith(env_key + "."):
            return "env " + ENV_PREFIX + env_key.replace(".", "__").upper()
    for yaml_key in yaml_keys:
        if key == yaml_key or key.startswith(yaml_key + "."):
            return str(config_file)
    return "default"
