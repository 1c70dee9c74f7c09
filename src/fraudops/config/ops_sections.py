"""Settings of serving, the dashboard, labels, alerts, the scheduler, retraining, the simulation."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from fraudops.config.base import LogBackend, Section


class RiskTier(Section):
    name: str
    min_probability: float = Field(ge=0, le=1)


def _default_risk_tiers() -> list[RiskTier]:
    return [
        RiskTier(name="low", min_probability=0.0),
        RiskTier(name="medium", min_probability=0.3),
        RiskTier(name="high", min_probability=0.7),
        RiskTier(name="critical", min_probability=0.9),
    ]


class ServingSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(1, ge=1)
    tokens: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer tokens accepted on predict and admin routes; required off loopback.",
    )
    max_batch: int = Field(1000, ge=1, description="Most transactions in one /v1/predict call.")
    max_body_bytes: int | None = Field(
        None,
        gt=0,
        description="Largest request body on any route (413 past it); default max_batch x "
        "4 KiB + 1 KiB (4 MB at 1,000).",
    )
    body_timeout_s: float = Field(
        10.0, gt=0, description="A request's whole body must arrive within this (408 after)."
    )
    keep_alive_s: int = Field(
        5, ge=1, description="An idle keep-alive connection is closed after this (uvicorn)."
    )
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
    log_backend: LogBackend = Field(
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


class DashboardSettings(Section):
    """`fraudops dashboard`: the governance web pages over the lake and the registry."""

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=1, le=65535)
    secret: SecretStr | None = Field(
        None,
        description="Sign-in secret of the dashboard (or any serving.tokens entry); required "
        "off loopback. Also the key the session cookies are signed with.",
    )
    refresh_seconds: float = Field(
        5.0, gt=0, description="How often an open page asks whether the lake or champion moved."
    )
    session_hours: float = Field(12.0, gt=0, description="A sign-in lasts this long.")
    max_sessions: int = Field(
        1000,
        ge=1,
        description="Signed-in sessions kept by the server (expired ones dropped; past it the "
        "oldest is signed out). Signing out ends a session for good.",
    )
    sign_in_free_attempts: int = Field(
        5, ge=1, description="Wrong secrets one client may try before the back-off starts."
    )
    sign_in_backoff_s: float = Field(
        1.0, gt=0, description="First back-off after the free attempts; doubles per failure."
    )
    sign_in_backoff_max_s: float = Field(300.0, gt=0, description="Longest back-off.")
    mlflow_ui_url: str | None = Field(
        "http://127.0.0.1:5000",
        description="Where `mlflow ui` runs, for the links to a monitoring run's MLflow run "
        "(null: show the run id only).",
    )
    plotly_js: Path | None = Field(
        None,
        description="A plotly.js bundle to serve (needs scatter and bar). Default: the basic "
        "bundle `make` installs from npm (node_modules/plotly.js-basic-dist-min, 1.2 MB), else "
        "the full one inside the installed plotly wheel (4.5 MB: a slower first page load).",
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


class LabelsSettings(Section):
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
    max_clock_skew_s: float = Field(
        300.0,
        ge=0,
        description="A confirmed_at later than now + this, or earlier than the labelled "
        "prediction's request_time - this, is refused (clocks of other systems drift).",
    )

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


class AlertSettings(Section):
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


class SchedulerJob(Section):
    cron: str | None = Field(
        None,
        description="Cron, UTC (5 fields; 6 with seconds first); drift_check: monitoring.schedule.",
    )
    command: list[str] = Field(description="The fraudops command to run, e.g. [monitor, run].")
    enabled: bool = True


def _default_jobs() -> dict[str, SchedulerJob]:
    return {"drift_check": SchedulerJob(command=["monitor", "run"])}


class SchedulerSettings(Section):
    jobs: dict[str, SchedulerJob] = Field(
        default_factory=_default_jobs, description="Jobs `fraudops scheduler` runs."
    )
    job_timeout_s: float = Field(3600, gt=0, description="A job running longer is stopped.")


class RetrainSettings(Section):
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
    on_concept_drift: bool = Field(
        True,
        description="Retrain when a monitoring run suspects concept drift (confirmed frauds "
        "flagged improbably less than CBPE expects).",
    )
    every_days: float | None = Field(
        None, gt=0, description="Also retrain when the champion is this many days old (schedule)."
    )
    cooldown_days: float = Field(
        14,
        ge=0,
        description="No automatic retrain within this many days of the last one (a failed one's "
        "cooldown gives way while the degradation gets worse: monitoring/cooldown.py).",
    )
    follow_ups: int = Field(
        2,
        ge=0,
        description="A concept-drift fix promoted from fresh labels is retrained again "
        "cooldown_days later, and a follow-up that wins again, at most this many times in a row.",
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
    fresh_labels: bool = Field(
        True,
        description="Use the labels already confirmed on days not yet mature (mostly fast-"
        "confirmed frauds): split between training and the holdout, so a new fraud pattern is "
        "learned, and judged, weeks before its days mature.",
    )
    fresh_holdout_share: float = Field(
        0.5, ge=0, lt=1, description="Share of the fresh labelled rows held out to judge on."
    )
    fresh_weight: float = Field(
        2.0,
        gt=0,
        description="Sample weight of a fresh labelled row on top of its recency weight.",
    )
    promote_via: Literal["holdout", "shadow"] = Field(
        "holdout",
        description="holdout: a winning challenger is promoted at once; shadow: it scores live "
        "traffic under serving.shadow_alias first, promoted once it beats the champion there.",
    )
    min_holdout_positives: int = Field(
        20, ge=1, description="Fewer frauds in the recent holdout: no retrain (figures too noisy)."
    )


class ConceptDrift(Section):
    """Seed 003's concept drift: labels flipped for high-value transactions."""

    amount_quantile: float = Field(
        0.99, gt=0, lt=1, description="High-value: amount at or above this quantile of the month."
    )
    flip_share: float = Field(
        1.0, gt=0, le=1, description="Share of the high-value legitimate rows that become fraud."
    )


class Scenario(Section):
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


class SimulationSettings(Section):
    months: int = Field(12, ge=1, description="Simulated months of production.")
    tx_per_day: int = Field(1000, ge=1, description="Transactions scored per simulated day.")
    scenario: str = Field("drift", description="The scenario `fraudops simulate` runs by default.")
    scenarios: dict[str, Scenario] = Field(default_factory=_default_scenarios)
    monitor_every_days: int = Field(7, ge=1, description="Monitoring run cadence (simulated).")
    evidence_report: bool = Field(
        True,
        description="Evidently's HTML reports behind the first automatic retrain (the audit "
        "trail's evidence; ~10-50 s of the run).",
    )
    seed: int = Field(7, description="Seed of the simulated traffic.")
