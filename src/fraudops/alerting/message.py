"""The alert itself: built once from a monitoring run's findings, rendered for every channel.

The plain-text body reproduces seed 000's "ML MODEL DRIFT ALERT" e-mail: time, detection
engine, the data-drift block (features analysed, drifted count and share, top drifted features
with their scores), the performance block (baseline and current ROC-AUC, degradation absolute and
relative), the recommended actions, then where the reports are. The same content goes to Slack as
blocks, with the body's first lines as the notification text.

A monitoring run builds its ``AlertSummary`` from its typed results (``make_summary``); a summary
that comes as JSON (the sample of `fraudops alerts test`) is validated by ``parse_summary``
(a pydantic form, ``SummaryForm``)::

    run_id, as_of, model_name, model_version,          # optional strings / ints
    features_analyzed: int,                            # optional; derived from count and share
    drifted_features: [(feature, psi, ks_pvalue, severity)] or [{feature, psi, ...}],
    drifted_count: int, drifted_share: float (0..1),   # optional; derived from the list
    performance: {roc_auc, pr_auc, recall, precision, baseline_roc_auc, degradation_pct},
    data_drift_detected: bool, model_drift_detected: bool,
    reports: {name: path or URL} (or a list of them), mlflow_experiment, mlflow_run_id
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from fraudops.errors import ValidationError
from fraudops.timeutil import as_utc

RULE = "=" * 80
TOP_FEATURES = 10  # the body lists this many drifted features, then "and N more"
DETECTION_ENGINE = "fraudops drift monitor (PSI, Kolmogorov-Smirnov)"
RED = "🔴"
RECOMMENDED_ACTIONS = (
    "Review the drift and performance reports (below) and the MLflow monitoring experiment",
    "Investigate root cause",
    "Consider retraining with recent data",
    "Review decision thresholds",
)
# Slack rejects a section text above 3000 characters.
SLACK_TEXT_LIMIT = 2900
PERFORMANCE_FIELDS = ("roc_auc", "pr_auc", "recall", "precision", "baseline_roc_auc")


@dataclass(frozen=True)
class DriftedFeature:
    feature: str
    psi: float | None
    ks_pvalue: float | None
    severity: str | None


@dataclass(frozen=True)
class AlertSummary:
    """What an alert says: built from a monitoring run (``make_summary``), or from JSON
    (``parse_summary``, see the module docstring for the shape)."""

    run_id: str | None
    as_of: str | None
    model_name: str | None
    model_version: str | None
    features_analyzed: int | None
    drifted_features: list[DriftedFeature]
    drifted_count: int
    drifted_share: float | None
    performance: dict[str, float | None]
    data_drift_detected: bool
    model_drift_detected: bool
    reports: dict[str, str]
    mlflow_experiment: str | None = None
    mlflow_run_id: str | None = None
    # Confirmed frauds flagged improbably less than CBPE expects (monitoring.signals).
    concept_drift_suspected: bool = False
    concept_drift_reason: str | None = None

    @property
    def needs_alert(self) -> bool:
        return self.data_drift_detected or self.model_drift_detected or self.concept_drift_suspected

    @property
    def severity(self) -> str:
        # A measured loss of performance costs money now; drifted inputs, or early frauds the
        # model misses (a suspicion until the labels mature), may or may not.
        if self.model_drift_detected:
            return "critical"
        return "warning" if self.data_drift_detected or self.concept_drift_suspected else "info"

    @property
    def incident_key(self) -> str:
        """Same model version, same drifted features, same degradation flag: same incident."""
        parts = [
            self.model_name or "",
            self.model_version or "",
            ",".join(sorted(f.feature for f in self.drifted_features)),
            f"model_drift={self.model_drift_detected}",
            *(["concept_drift"] if self.concept_drift_suspected else []),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AlertMessage:
    subject: str
    body: str
    severity: str
    incident_key: str
    run_id: str | None
    created_at: datetime
    slack: dict[str, Any] = field(default_factory=dict)


# ---- parsing -------------------------------------------------------------------------------


def make_summary(
    *,
    run_id: str | None,
    as_of: str | None,
    model_name: str | None,
    model_version: str | None,
    drifted_features: Sequence[DriftedFeature],
    performance: Mapping[str, float | None],
    model_drift_detected: bool,
    data_drift_detected: bool | None = None,
    features_analyzed: int | None = None,
    drifted_count: int | None = None,
    drifted_share: float | None = None,
    reports: Mapping[str, str] | None = None,
    mlflow_experiment: str | None = None,
    mlflow_run_id: str | None = None,
    concept_drift_suspected: bool = False,
    concept_drift_reason: str | None = None,
) -> AlertSummary:
    """The summary of typed values, what is left out derived: the drifted count from the list,
    the features analysed from count and share (or the share from those), the degradation from
    the baseline and current ROC-AUC; NaN figures count as missing."""
    features = [
        DriftedFeature(f.feature, _finite(f.psi), _finite(f.ks_pvalue), f.severity)
        for f in drifted_features
    ]
    count = len(features) if drifted_count is None else drifted_count
    share = _finite(drifted_share)
    analyzed = features_analyzed
    if analyzed is None and share:
        analyzed = round(count / share)
    if share is None and analyzed:
        share = count / analyzed
    figures: dict[str, float | None] = {
        key: _finite(performance.get(key)) for key in (*PERFORMANCE_FIELDS, "degradation_pct")
    }
    if figures["degradation_pct"] is None:
        base, current = figures["baseline_roc_auc"], figures["roc_auc"]
        if base and current is not None:
            figures["degradation_pct"] = (base - current) / base * 100
    return AlertSummary(
        run_id=run_id,
        as_of=as_of,
        model_name=model_name,
        model_version=model_version,
        features_analyzed=analyzed,
        drifted_features=sorted(features, key=_drift_rank),
        drifted_count=count,
        drifted_share=share,
        performance=figures,
        data_drift_detected=bool(features) if data_drift_detected is None else data_drift_detected,
        model_drift_detected=model_drift_detected,
        reports=dict(reports or {}),
        mlflow_experiment=mlflow_experiment,
        mlflow_run_id=mlflow_run_id,
        concept_drift_suspected=concept_drift_suspected,
        concept_drift_reason=concept_drift_reason,
    )


def parse_summary(summary: Mapping[str, Any]) -> AlertSummary:
    """A summary from JSON (seed 000's shape, see the module docstring) validated by
    ``SummaryForm``; a ValidationError names the offending key."""
    if not isinstance(summary, Mapping):
        raise ValidationError(f"alert summary must be a mapping, got {type(summary).__name__}")
    try:
        form = SummaryForm.model_validate(dict(summary))
    except PydanticValidationError as exc:
        error = exc.errors()[0]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        message = "is required" if error["type"] == "missing" else message[:1].lower() + message[1:]
        raise ValidationError(f"alert summary: {where.lstrip('.')!r} {message}") from None
    performance = form.performance or PerformanceForm()
    return make_summary(
        run_id=form.run_id,
        as_of=form.as_of,
        model_name=form.model_name,
        model_version=form.model_version,
        drifted_features=[
            DriftedFeature(f.feature, f.psi, f.ks_pvalue, f.severity) for f in form.drifted_features
        ],
        performance=performance.model_dump(),
        model_drift_detected=bool(form.model_drift_detected),
        data_drift_detected=form.data_drift_detected,
        features_analyzed=form.features_analyzed,
        drifted_count=form.drifted_count,
        drifted_share=form.drifted_share,
        reports=form.reports,
        mlflow_experiment=form.mlflow_experiment,
        mlflow_run_id=form.mlflow_run_id,
        concept_drift_suspected=bool(form.concept_drift_suspected),
        concept_drift_reason=form.concept_drift_reason,
    )


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _drift_rank(feature: DriftedFeature) -> tuple[float, float]:
    # Largest PSI first; among equals (or no PSI) the smallest KS p-value.
    psi = feature.psi if feature.psi is not None else -1.0
    pvalue = feature.ks_pvalue if feature.ks_pvalue is not None else 1.0
    return (-psi, pvalue)


# ---- the JSON form (pydantic) ----------------------------------------------------------------
# Lenient where seed 000's producers are (numpy scalars, Decimal, NaN for "unknown", a feature
# as a tuple), strict where a wrong type would mislead (a bool as a number, "yes" as a flag).


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    try:
        number = float(value)  # numpy scalars, Decimal
    except (TypeError, ValueError):
        raise ValueError(f"must be a number, got {value!r}") from None
    return None if math.isnan(number) else number


def _count(value: Any) -> int | None:
    number = _number(value)
    if number is None:
        return None
    if number != int(number) or number < 0:
        raise ValueError(f"must be a count, got {value!r}")
    return int(number)


def _flag(value: Any) -> bool | None:
    if hasattr(value, "item"):  # numpy.bool_
        value = value.item()
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def _feature(item: Any) -> Any:
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, Sequence) and not isinstance(item, str) and 1 <= len(item) <= 4:
        return dict(zip(("feature", "psi", "ks_pvalue", "severity"), item, strict=False))
    raise ValueError("must be (feature, psi, ks_pvalue, severity) or a mapping")


def _reports(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return {f"report {i + 1}": str(v) for i, v in enumerate(value)}
    return {"report": str(value)}


def _performance(value: Any) -> Any:
    if value and not isinstance(value, Mapping):
        raise ValueError("must be a mapping of metric -> value")
    return dict(value) if value else None


Number = Annotated[float | None, BeforeValidator(_number)]
Count = Annotated[int | None, BeforeValidator(_count)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]
Text = Annotated[str | None, BeforeValidator(_text)]


class FeatureForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feature: Annotated[str, Field(min_length=1, strict=True)]
    psi: Number = None
    ks_pvalue: Number = None
    severity: Text = None


class PerformanceForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    roc_auc: Number = None
    pr_auc: Number = None
    recall: Number = None
    precision: Number = None
    baseline_roc_auc: Number = None
    degradation_pct: Number = None


class SummaryForm(BaseModel):
    """An alert summary as JSON carries it (the module docstring's shape)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    run_id: Text = None
    as_of: Text = None
    model_name: Text = None
    model_version: Text = None
    features_analyzed: Count = None
    drifted_features: Annotated[
        list[Annotated[FeatureForm, BeforeValidator(_feature)]],
        BeforeValidator(lambda v: v or []),
    ] = []
    drifted_count: Count = None
    drifted_share: Number = None
    performance: Annotated[PerformanceForm | None, BeforeValidator(_performance)] = None
    data_drift_detected: Flag = None
    model_drift_detected: Flag = None
    reports: Annotated[dict[str, str], BeforeValidator(_reports)] = {}
    mlflow_experiment: Text = None
    mlflow_run_id: Text = None
    concept_drift_suspected: Flag = None
    concept_drift_reason: Text = None


# ---- rendering -----------------------------------------------------------------------------


def build_message(
    summary: AlertSummary, *, now: datetime | None = None, test: bool = False
) -> AlertMessage:
    created = as_utc(now)
    return AlertMessage(
        subject=_subject(summary, test),
        body=_body(summary, created, test),
        severity=summary.severity,
        incident_key=summary.incident_key,
        run_id=summary.run_id,
        created_at=created,
        slack=_slack(summary, created, test),
    )


def _model_label(s: AlertSummary) -> str:
    name = s.model_name or "model"
    return f"{name} version {s.model_version}" if s.model_version else name


def _subject(s: AlertSummary, test: bool) -> str:
    findings = []
    if s.data_drift_detected:
        findings.append(f"data drift in {s.drifted_count} feature{'s' * (s.drifted_count != 1)}")
    if s.model_drift_detected:
        degradation = s.performance.get("degradation_pct")
        findings.append(
            f"ROC-AUC down {degradation:.1f}%" if degradation is not None else "performance drift"
        )
    if s.concept_drift_suspected:
        findings.append("concept drift suspected")
    what = ", ".join(findings) or "no drift"
    prefix = "[fraudops TEST]" if test else "[fraudops]"
    return f"{prefix} {s.severity.upper()} ML model drift alert: {_model_label(s)}: {what}"


def _pvalue(value: float) -> str:
    return f"{value:.4f}" if value == 0 or value >= 0.0001 else f"{value:.2e}"


def _feature_line(f: DriftedFeature) -> str:
    parts = []
    if f.psi is not None:
        parts.append(f"psi={f.psi:.4f}")
    if f.ks_pvalue is not None:
        parts.append(f"ks_pvalue={_pvalue(f.ks_pvalue)}")
    if f.severity:
        parts.append(f"severity={f.severity}")
    return f"- {f.feature}: {', '.join(parts) or 'drifted'}"


def _drift_lines(s: AlertSummary) -> list[str]:
    if not s.data_drift_detected:
        analyzed = f" ({s.features_analyzed} features analyzed)" if s.features_analyzed else ""
        return [f"No data drift detected{analyzed}"]
    share = f" ({s.drifted_share:.1%})" if s.drifted_share is not None else ""
    lines = [f"{RED} DATA DRIFT DETECTED (PSI / KS test against the training baseline)"]
    if s.features_analyzed is not None:
        lines.append(f"Features Analyzed: {s.features_analyzed}")
    lines.append(f"Drifted Features: {s.drifted_count}{share}")
    if s.drifted_share is not None:
        lines.append(f"Drifted Columns Share: {s.drifted_share:.1%}")
    if s.drifted_features:
        lines.append("Top Drifted Features (by drift score):")
        lines += [_feature_line(f) for f in s.drifted_features[:TOP_FEATURES]]
        if (more := len(s.drifted_features) - TOP_FEATURES) > 0:
            lines.append(f"- ... and {more} more")
    return lines


def _performance_lines(s: AlertSummary) -> list[str]:
    p = s.performance
    base, current, degradation = p["baseline_roc_auc"], p["roc_auc"], p["degradation_pct"]
    concept = (
        [f"Concept drift suspected: {s.concept_drift_reason or 'early frauds missed'}"]
        if s.concept_drift_suspected
        else []
    )
    if s.model_drift_detected:
        lines = [f"{RED} MODEL PERFORMANCE DRIFT DETECTED (ROC-AUC against the baseline)"]
    elif current is None:
        return ["Model performance: not evaluated (no mature ground-truth labels yet)", *concept]
    else:
        lines = ["Model performance: within limits"]
    lines += concept
    if base is not None:
        lines.append(f"Baseline ROC-AUC: {base:.4f}")
    if current is not None:
        lines.append(f"Current ROC-AUC: {current:.4f}")
    if degradation is not None:
        absolute = f"{base - current:.4f} " if base is not None and current is not None else ""
        lines.append(f"Degradation: {absolute}({degradation:.1f}%)")
    for key, label in (("pr_auc", "PR-AUC"), ("recall", "Recall"), ("precision", "Precision")):
        if (value := p[key]) is not None:
            lines.append(f"Current {label}: {value:.4f}")
    return lines


def _report_lines(s: AlertSummary) -> list[str]:
    lines = [f"- {name}: {where}" for name, where in s.reports.items()]
    if s.mlflow_experiment or s.mlflow_run_id:
        run = f", run {s.mlflow_run_id}" if s.mlflow_run_id else ""
        lines.append(f"- MLflow: experiment {s.mlflow_experiment or '?'}{run}")
    return lines or ["- (no reports recorded for this run)"]


def _body(s: AlertSummary, created: datetime, test: bool) -> str:
    lines = [RULE, "ML MODEL DRIFT ALERT" + (" (TEST)" if test else ""), RULE]
    lines.append(f"Time: {created:%Y-%m-%d %H:%M:%S} UTC")
    lines.append(f"Detection Engine: {DETECTION_ENGINE}")
    lines.append(f"Model: {_model_label(s)}")
    if s.run_id:
        lines.append(f"Monitoring Run: {s.run_id}")
    if s.as_of:
        lines.append(f"Data As Of: {s.as_of}")
    lines += ["", *_drift_lines(s), "", *_performance_lines(s), "", "RECOMMENDED ACTIONS:"]
    lines += [f"{i}. {action}" for i, action in enumerate(RECOMMENDED_ACTIONS, 1)]
    lines += ["", "REPORTS:", *_report_lines(s), RULE, f"Incident: {s.incident_key}"]
    return "\n".join(lines) + "\n"


def _clip(text: str) -> str:
    return text if len(text) <= SLACK_TEXT_LIMIT else text[: SLACK_TEXT_LIMIT - 1] + "…"


def _slack(s: AlertSummary, created: datetime, test: bool) -> dict[str, Any]:
    def section(lines: list[str]) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines))}}

    head = [
        f"*Time:* {created:%Y-%m-%d %H:%M:%S} UTC",
        f"*Model:* {_model_label(s)}",
        f"*Severity:* {s.severity}",
    ]
    if s.run_id:
        head.append(f"*Monitoring run:* `{s.run_id}`")
    drift, perf = _drift_lines(s), _performance_lines(s)
    actions = [f"{i}. {a}" for i, a in enumerate(RECOMMENDED_ACTIONS, 1)]
    title = "ML MODEL DRIFT ALERT" + (" (TEST)" if test else "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        section(head),
        section([f"*{drift[0]}*", *drift[1:]]),
        section([f"*{perf[0]}*", *perf[1:]]),
        section(["*RECOMMENDED ACTIONS:*", *actions]),
        section(["*Reports:*", *_report_lines(s)]),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"incident {s.incident_key}"}]},
    ]
    return {"text": _subject(s, test), "blocks": blocks}
