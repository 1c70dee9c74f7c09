"""The training-serving skew alert: a monitoring run found served rows whose logged derived
features differ from an offline recomputation (monitoring/skew.py) in a larger share than
``monitoring.skew_alert_share``.

Its own incident, beside drift and degradation: same model version, same skewed features. It
goes through the same channels, cooldown and record (dispatch.py's ``send_message``); the
subject names the share and the worst features, the body every skewed feature with its share.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from fraudops.alerting.channels import AlertChannel
from fraudops.alerting.dispatch import AlertOutcome, send_message
from fraudops.alerting.message import RULE, AlertMessage
from fraudops.config import Settings
from fraudops.lake.catalog import Lake
from fraudops.timeutil import as_utc

SUBJECT_FEATURES = 3  # the subject names so many skewed features, the body all of them
ACTIONS = (
    "Compare a skewed row's logged values with `fraudops features export` of its time",
    "Check that every label reaches the server (POST /v1/labels) and the store kept its state",
    "Check that serving and training read the same spec (derived declarations unchanged)",
)


@dataclass(frozen=True)
class SkewSummary:
    """What a skew alert says: the run, the rows checked, the share differing, per feature."""

    run_id: str | None
    as_of: str | None
    model_name: str | None
    model_version: str | None
    rows: int
    share: float
    alert_share: float
    per_feature: dict[str, float] = field(default_factory=dict)

    @property
    def skewed(self) -> list[tuple[str, float]]:
        """The features with a difference, the largest share first."""
        found = [(name, share) for name, share in self.per_feature.items() if share > 0]
        return sorted(found, key=lambda item: (-item[1], item[0]))

    @property
    def incident_key(self) -> str:
        parts = [
            "skew",
            self.model_name or "",
            self.model_version or "",
            ",".join(sorted(name for name, _ in self.skewed)),
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def build_skew_message(summary: SkewSummary, *, now: datetime | None = None) -> AlertMessage:
    created = as_utc(now)
    model = summary.model_name or "model"
    if summary.model_version:
        model = f"{model} version {summary.model_version}"
    skewed = summary.skewed
    worst = ", ".join(f"{name} {share:.1%}" for name, share in skewed[:SUBJECT_FEATURES])
    more = f" and {len(skewed) - SUBJECT_FEATURES} more" if len(skewed) > SUBJECT_FEATURES else ""
    subject = (
        f"[fraudops] WARNING training-serving skew: {model}: {summary.share:.1%} of "
        f"{summary.rows} served rows differ ({worst}{more})"
    )
    findings = [
        f"Rows Checked: {summary.rows}",
        f"Rows With A Difference: {summary.share:.1%} (alert above {summary.alert_share:.1%}, "
        "monitoring.skew_alert_share)",
        "Skewed Features (share of rows differing):",
        *(f"- {name}: {share:.1%}" for name, share in skewed),
    ]
    lines = [RULE, "TRAINING-SERVING SKEW ALERT", RULE]
    lines.append(f"Time: {created:%Y-%m-%d %H:%M:%S} UTC")
    lines.append(f"Model: {model}")
    if summary.run_id:
        lines.append(f"Monitoring Run: {summary.run_id}")
    if summary.as_of:
        lines.append(f"Data As Of: {summary.as_of}")
    lines += ["", *findings, "", "RECOMMENDED ACTIONS:"]
    lines += [f"{i}. {action}" for i, action in enumerate(ACTIONS, 1)]
    lines += [RULE, f"Incident: {summary.incident_key}"]
    text = "\n".join(findings)
    slack = {
        "text": subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "TRAINING-SERVING SKEW"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Model:* {model}\n{text}"}},
        ],
    }
    return AlertMessage(
        subject=subject,
        body="\n".join(lines) + "\n",
        severity="warning",  # the model sees other inputs than it was trained on: not a loss yet
        incident_key=summary.incident_key,
        run_id=summary.run_id,
        created_at=created,
        slack=slack,
    )


def send_skew_alert(
    settings: Settings,
    lake: Lake,
    summary: SkewSummary,
    *,
    channels: Sequence[AlertChannel],
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertOutcome:
    """Alert on ``summary`` through ``channels`` (cooldown and record as for drift alerts)."""
    return send_message(
        settings, lake, build_skew_message(summary, now=now), channels=channels, sleep=sleep
    )
