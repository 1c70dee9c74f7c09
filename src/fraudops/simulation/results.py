"""What a simulation produces: typed rows between its modules, dicts only at the JSON edge
(``simulation.json`` and ``--json``, whose shape ``to_dict`` keeps)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class MonthRow:
    """One simulated month: what the served model really did, against the true outcomes."""

    month: int  # 1-based
    start: str  # ISO date of its first day
    volume: int  # predictions served (and joined with their true outcome)
    frauds: int
    recall: float | None  # None: a month with one class only
    precision: float | None
    roc_auc: float | None
    pr_auc: float | None
    drifted_features: int  # the most features at alarm level in one of its monitoring runs
    alerts: int  # its monitoring runs that alerted (sent or suppressed)
    retrains: int  # retrains decided in it
    promoted: int
    champion: str | None  # at the month's end
    served_by: list[str]  # model versions that answered its traffic
    data_drift: bool  # the scenario's data drift is on
    concept_drift: bool
    # The fraud team's figures at the served operating point: alerts a day, and the fraud
    # amount flagged (caught) and not (None: a spec without an amount).
    flagged_per_day: float | None = None
    amount_caught: float | None = None
    amount_missed: float | None = None


@dataclass
class MonitoringRun:
    """One weekly monitoring run, the policy's answer to it and the labels delivered before it."""

    run_id: str
    as_of: str
    champion: str
    labels_delivered: int
    predictions: int  # in the data-drift window
    data_drift_detected: bool
    model_drift_detected: bool
    alarmed_features: int
    mature_recall: float | None
    mature_roc_auc: float | None
    alert: str | None  # the alert's status; None when the run did not alert
    retrain_reasons: list[str]
    retrain_blocked: str | None
    shadow: dict[str, Any] | None  # the run's shadow comparison
    shadow_verdict: dict[str, Any] | None  # the policy's verdict on a challenger in shadow
    concept_drift_suspected: bool = False
    # The fast signals (``FastSignals.summary``, the data window's days only) with the CBPE
    # estimate; ``cbpe_check``: that estimate against the window's true outcomes (at the end).
    signals: dict[str, Any] | None = None
    cbpe_check: dict[str, Any] | None = None


@dataclass
class Retrain:
    """A retrain a monitoring run asked for (``via`` None), or a shadowed challenger promoted on
    live traffic (``via`` "shadow", carrying its retrain's fields)."""

    as_of: str
    monitoring_run_id: str
    decision: str  # promoted, shadowed, not_promoted, rejected
    reason: str
    version: str | None
    champion_before: str | None
    champion_after: str | None
    challenger: dict[str, Any]  # key metrics
    champion: dict[str, Any]
    reasons: list[str] | None = None
    mlflow_run_id: str | None = None
    retrain_data: dict[str, Any] | None = None
    reports: dict[str, str] | None = None
    via: str | None = None

    @property
    def holdout_start(self) -> str:
        """The first day of the holdout it was judged on ('' when unknown)."""
        return str((self.retrain_data or {}).get("holdout_start") or "")

    @property
    def fresh_holdout_rows(self) -> int:
        """Fresh labelled rows (days not yet mature) in its holdout."""
        return int((self.retrain_data or {}).get("fresh_holdout_rows") or 0)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.via is None:  # the JSON of a retrain's own decision has no "via"
            del out["via"]
        return out


@dataclass
class Outcome:
    """What the run shows: detection, retrain, recovery — or, for a control, quiet."""

    drift_alerts: int
    retrains: int
    promotions: int
    final_champion: str | None
    quiet: bool | None = None  # a control (no onset) only
    pre_drift_recall: float | None = None
    pre_drift_amount_caught_share: float | None = None  # of the fraud amount before the onset
    detected_at_run: int | None = None  # 1-based, counted from the first run after the onset
    detected_as_of: str | None = None
    recovery_retrain: str | None = None  # the first promoted retrain that saw the drift
    recovery_retrain_as_of: str | None = None
    post_retrain_months: list[int] | None = None
    post_retrain_recall: float | None = None
    recovered: bool | None = None  # a drift scenario only
    # Per onset: days to the first run that saw something and to the first promotion after it.
    onsets: list[dict[str, Any]] | None = None
    # CBPE's 95 % intervals against the true outcomes, and the concept-drift suspicions.
    fast_signals: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        """Recovered from the drift, or (a control) quiet."""
        return bool(self.recovered if self.quiet is None else self.quiet)

    def to_dict(self) -> dict[str, Any]:
        """The keys that apply: a control's ``quiet``, a drift scenario's detection and
        recovery (the recovery retrain's only when there was one)."""
        out = asdict(self)
        if self.quiet is not None:
            keep = [
                "drift_alerts",
                "retrains",
                "promotions",
                "final_champion",
                "quiet",
                "fast_signals",
            ]
        else:
            keep = [k for k in out if k != "quiet"]
            if self.recovery_retrain is None:
                keep = [k for k in keep if not k.startswith(("recovery_", "post_retrain_"))]
        return {k: out[k] for k in keep}


@dataclass
class SimulationResult:
    scenario: str
    description: str
    months: int
    tx_per_day: int
    start: str
    home: str
    data_drift_month: int | None
    concept_drift_month: int | None
    initial_champion: str | None
    training: dict[str, Any] = field(default_factory=dict)  # the initial training's summary
    month_rows: list[MonthRow] = field(default_factory=list)
    monitoring_runs: list[MonitoringRun] = field(default_factory=list)
    retrains: list[Retrain] = field(default_factory=list)
    outcome: Outcome | None = None
    chart: str | None = None
    summary_path: str | None = None
    reports_dir: str | None = None
    alerts_log: str | None = None
    tracking_uri: str | None = None
    mlflow_ui: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in ("month_rows", "monitoring_runs"):
                value = [asdict(row) for row in value]
            elif name == "retrains":
                value = [retrain.to_dict() for retrain in value]
            elif name == "outcome":
                value = value.to_dict() if value is not None else {}
            elif isinstance(value, dict):
                value = dict(value)
            out[name] = value
        return out
