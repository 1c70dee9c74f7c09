"""The critical alert of a promotion below the gate's floors (here, not in alerting/: it reads a
training result, and alerting sits below training).

A retrain's challenger that misses the gate's absolute floors is still promoted when it beats a
champion that does even worse on the same holdout (training/gate.py, ``promoted_below_floor``):
serving the better of two weak models is the right call at once, but what to do next (a
different trainer, more labels, a rule while the model recovers) is a person's decision. The
alert says which floors were missed, by both models, and what was trained on.

It goes through the same channels, cooldown and record as the other alerts (dispatch.py's
``send_message``); one incident per promoted version.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from fraudops.alerting.channels import AlertChannel
from fraudops.alerting.dispatch import AlertOutcome, send_message
from fraudops.alerting.message import RULE, AlertMessage
from fraudops.config import Settings
from fraudops.lake.catalog import Lake
from fraudops.timeutil import as_utc
from fraudops.training.result import TrainingResult

ACTIONS = (
    "Open the model's page on the dashboard: the holdout figures of both models and the "
    "monitoring run that asked for the retrain",
    "Consider a temporary rule or a lower alert threshold while labels of the new pattern mature",
    "Retrain by hand (`fraudops retrain`) once more labels are in, or roll back "
    "(`fraudops models rollback`) if the new champion misbehaves",
)


def build_below_floor_message(
    training: TrainingResult, *, run_id: str | None, now: datetime | None = None
) -> AlertMessage:
    created = as_utc(now)
    model = f"{training.model_name} version {training.version}"
    failed = [c for c in training.gate.checks if c.kind == "threshold" and not c.passed]
    missed = ", ".join(c.describe() for c in failed)
    subject = (
        f"[fraudops] CRITICAL promoted below the gate's floors: {model} ({missed}), "
        f"replacing v{training.champion_before}"
    )
    champion, ours = training.gate.champion_metrics, training.metrics.to_dict()
    findings = [
        f"New Champion: {model}",
        f"Replaced: version {training.champion_before}",
        "Missed Floors (challenger):",
        *(f"- {c.describe()}" for c in failed),
        "Both On The Same Holdout:",
        *(
            f"- {k}: challenger {float(ours[k]):.4f}, champion {v:.4f}"
            for k, v in champion.items()
            if ours.get(k) is not None
        ),
        f"Gate: {training.gate.reason}",
    ]
    lines = [RULE, "PROMOTED BELOW THE GATE'S FLOORS", RULE]
    lines.append(f"Time: {created:%Y-%m-%d %H:%M:%S} UTC")
    if run_id:
        lines.append(f"Monitoring Run: {run_id}")
    lines.append(f"Training Run: {training.run_id}")
    key = hashlib.sha256(f"below_floor|{training.model_name}|{training.version}".encode())
    lines += ["", *findings, "", "RECOMMENDED ACTIONS:"]
    lines += [f"{i}. {action}" for i, action in enumerate(ACTIONS, 1)]
    lines += [RULE, f"Incident: {key.hexdigest()[:16]}"]
    slack = {
        "text": subject,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "PROMOTED BELOW FLOOR"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(findings)}},
        ],
    }
    return AlertMessage(
        subject=subject,
        body="\n".join(lines) + "\n",
        severity="critical",
        incident_key=key.hexdigest()[:16],
        run_id=run_id,
        created_at=created,
        slack=slack,
    )


def send_below_floor_alert(
    settings: Settings,
    lake: Lake,
    training: TrainingResult,
    *,
    channels: Sequence[AlertChannel],
    run_id: str | None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertOutcome:
    message = build_below_floor_message(training, run_id=run_id, now=now)
    return send_message(settings, lake, message, channels=channels, sleep=sleep)
