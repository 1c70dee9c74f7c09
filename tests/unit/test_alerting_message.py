from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from fraudops.alerting.channels import Delivery, PermanentDeliveryError, deliver
from fraudops.alerting.message import (
    RECOMMENDED_ACTIONS,
    RULE,
    TOP_FEATURES,
    AlertMessage,
    AlertSummary,
    DriftedFeature,
    build_message,
    make_summary,
    parse_summary,
)
from fraudops.config import load_settings
from fraudops.errors import ConfigError, ValidationError

NOW = datetime(2026, 2, 24, 2, 0, 15, tzinfo=UTC)


def summary(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "run_id": "run-42",
        "as_of": "2026-02-24T02:00:00+00:00",
        "model_name": "fraudops-transactions30",
        "model_version": 3,
        "features_analyzed": 30,
        "drifted_features": [
            ("customer_age", 0.25, 0.0034, "moderate"),
            ("transaction_amount", 0.4123, 0.0012, "high"),
            {"feature": "distance_from_home_km", "psi": 0.31, "ks_pvalue": 0.0089},
        ],
        "performance": {
            "roc_auc": 0.5713,
            "pr_auc": 0.21,
            "recall": 0.4,
            "precision": 0.3,
            "baseline_roc_auc": 0.92,
            "degradation_pct": 37.9,
        },
        "data_drift_detected": True,
        "model_drift_detected": True,
        "reports": {"data drift": "/home/reports/data_drift.html"},
    }
    base.update(overrides)
    return base


def parsed(**overrides: Any) -> AlertSummary:
    return parse_summary(summary(**overrides))


def test_body_reproduces_the_seed_alert() -> None:
    message = build_message(parsed(), now=NOW)
    lines = message.body.splitlines()
    assert lines[:3] == [RULE, "ML MODEL DRIFT ALERT", RULE]
    assert "Time: 2026-02-24 02:00:15 UTC" in lines
    assert "Model: fraudops-transactions30 version 3" in lines
    assert "Monitoring Run: run-42" in lines
    assert "🔴 DATA DRIFT DETECTED (PSI / KS test against the training baseline)" in lines
    assert "Features Analyzed: 30" in lines
    assert "Drifted Features: 3 (10.0%)" in lines
    assert "Drifted Columns Share: 10.0%" in lines
    # Ranked by PSI, largest first.
    top = lines.index("Top Drifted Features (by drift score):")
    assert lines[top + 1 : top + 4] == [
        "- transaction_amount: psi=0.4123, ks_pvalue=0.0012, severity=high",
        "- distance_from_home_km: psi=0.3100, ks_pvalue=0.0089",
        "- customer_age: psi=0.2500, ks_pvalue=0.0034, severity=moderate",
    ]
    assert "Baseline ROC-AUC: 0.9200" in lines
    assert "Current ROC-AUC: 0.5713" in lines
    assert "Degradation: 0.3487 (37.9%)" in lines
    assert "Current Recall: 0.4000" in lines
    actions = lines.index("RECOMMENDED ACTIONS:")
    assert lines[actions + 1 : actions + 5] == [
        f"{i}. {a}" for i, a in enumerate(RECOMMENDED_ACTIONS, 1)
    ]
    assert "- data drift: /home/reports/data_drift.html" in lines
    assert lines[-1] == f"Incident: {message.incident_key}"
    assert message.severity == "critical"
    assert message.subject == (
        "[fraudops] CRITICAL ML model drift alert: fraudops-transactions30 version 3: "
        "data drift in 3 features, ROC-AUC down 37.9%"
    )


def test_data_drift_only_is_a_warning_and_says_performance_is_within_limits() -> None:
    message = build_message(
        parsed(
            model_drift_detected=False,
            performance={"roc_auc": 0.91, "baseline_roc_auc": 0.92},
        ),
        now=NOW,
    )
    assert message.severity == "warning"
    assert "MODEL PERFORMANCE DRIFT" not in message.body
    assert "Model performance: within limits" in message.body
    # Degradation derived from the two ROC-AUCs when the summary does not give it.
    assert "Degradation: 0.0100 (1.1%)" in message.body
    assert message.subject.endswith("data drift in 3 features")


def test_no_labels_yet_says_performance_not_evaluated() -> None:
    message = build_message(parsed(model_drift_detected=False, performance={}))
    assert "Model performance: not evaluated (no mature ground-truth labels yet)" in message.body


def test_share_and_count_derive_from_each_other() -> None:
    parsed = parse_summary(summary(features_analyzed=None, drifted_share=0.1))
    assert parsed.features_analyzed == 30
    parsed = parse_summary(summary(drifted_share=None))
    assert parsed.drifted_count == 3
    assert parsed.drifted_share == pytest.approx(0.1)


def test_a_typed_summary_is_the_one_its_json_parses_to() -> None:
    typed = make_summary(
        run_id="run-42",
        as_of="2026-02-24T02:00:00+00:00",
        model_name="fraudops-transactions30",
        model_version="3",
        features_analyzed=30,
        drifted_features=[
            DriftedFeature("customer_age", 0.25, 0.0034, "moderate"),
            DriftedFeature("transaction_amount", 0.4123, 0.0012, "high"),
            DriftedFeature("distance_from_home_km", 0.31, 0.0089, None),
        ],
        performance=summary()["performance"],
        data_drift_detected=True,
        model_drift_detected=True,
        reports={"data drift": "/home/reports/data_drift.html"},
    )
    assert typed == parsed()
    assert typed.drifted_features[0].feature == "transaction_amount"  # the largest PSI first
    # NaN figures count as missing, as a JSON null does.
    nan = make_summary(
        run_id=None,
        as_of=None,
        model_name=None,
        model_version=None,
        drifted_features=[DriftedFeature("a", float("nan"), None, None)],
        performance={"roc_auc": float("nan"), "baseline_roc_auc": 0.9},
        model_drift_detected=False,
    )
    assert nan.drifted_features[0].psi is None and nan.performance["roc_auc"] is None
    assert nan.performance["degradation_pct"] is None and nan.drifted_count == 1


def test_long_feature_lists_are_cut() -> None:
    many = [(f"f{i:02d}", 1.0 - i / 100, 0.0, "high") for i in range(TOP_FEATURES + 4)]
    body = build_message(parsed(drifted_features=many)).body
    assert f"- f{TOP_FEATURES - 1:02d}: psi=" in body
    assert f"- f{TOP_FEATURES:02d}: psi=" not in body
    assert "- ... and 4 more" in body


def test_incident_key_ignores_order_and_scores_but_not_the_degradation_flag() -> None:
    key = parse_summary(summary()).incident_key
    reordered = summary(
        drifted_features=[
            ("distance_from_home_km", 0.9, 0.0, "high"),
            ("customer_age", 0.3, 0.0, "high"),
            ("transaction_amount", 0.5, 0.0, "high"),
        ]
    )
    assert parse_summary(reordered).incident_key == key
    assert parse_summary(summary(model_drift_detected=False)).incident_key != key
    assert parse_summary(summary(model_version=4)).incident_key != key
    fewer = summary(drifted_features=[("customer_age", 0.3, 0.0, "high")])
    assert parse_summary(fewer).incident_key != key


def test_no_drift_needs_no_alert() -> None:
    parsed = parse_summary(
        summary(drifted_features=[], data_drift_detected=None, model_drift_detected=False)
    )
    assert not parsed.data_drift_detected
    assert not parsed.needs_alert


def test_slack_payload_carries_the_same_content() -> None:
    message = build_message(parsed(), now=NOW)
    payload = message.slack
    assert payload["text"] == message.subject
    assert payload["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "ML MODEL DRIFT ALERT"},
    }
    text = "\n".join(b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert "transaction_amount: psi=0.4123, ks_pvalue=0.0012" in text
    assert "Degradation: 0.3487 (37.9%)" in text
    assert "3. Consider retraining with recent data" in text
    assert "/home/reports/data_drift.html" in text


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"drifted_features": [("amount", "high?")]}, "drifted_features[0].psi"),
        ({"drifted_features": [{"psi": 0.3}]}, "drifted_features[0].feature"),
        ({"drifted_features": ["amount"]}, "drifted_features[0]"),
        ({"performance": {"roc_auc": "good"}}, "performance.roc_auc"),
        ({"performance": [0.9]}, "'performance'"),
        ({"model_drift_detected": "yes"}, "model_drift_detected"),
        ({"drifted_count": 2.5}, "drifted_count"),
    ],
)
def test_bad_summary_names_the_field(bad: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_summary(summary(**bad))


def test_config_requires_recipients_and_url_for_their_channels() -> None:
    with pytest.raises(ConfigError, match="email_to"):
        load_settings(alerts={"channels": ["email"]})
    with pytest.raises(ConfigError, match="webhook_url"):
        load_settings(alerts={"channels": ["webhook"]})
    settings = load_settings(alerts={"channels": ["log", "webhook"], "webhook_url": "http://x"})
    assert settings.alerts.channels == ["log", "webhook"]
    assert settings.alerts.cooldown_minutes == 360


class FlakyChannel:
    name = "flaky"

    def __init__(self, failures: int, permanent: bool = False) -> None:
        self.failures = failures
        self.permanent = permanent
        self.calls = 0

    def send(self, message: AlertMessage) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            if self.permanent:
                raise PermanentDeliveryError("refused for good")
            raise ConnectionError("receiver down")


def test_deliver_retries_with_doubling_backoff_and_never_raises() -> None:
    message = build_message(parsed())
    waits: list[float] = []
    ok = deliver(FlakyChannel(2), message, retries=3, backoff_s=0.5, sleep=waits.append)
    assert ok == Delivery("flaky", True, 3)
    assert waits == [0.5, 1.0]

    waits.clear()
    failed = deliver(FlakyChannel(10), message, retries=2, backoff_s=0.5, sleep=waits.append)
    assert failed == Delivery("flaky", False, 3, "ConnectionError: receiver down")
    assert waits == [0.5, 1.0]

    waits.clear()
    refused = deliver(
        FlakyChannel(10, permanent=True), message, retries=5, backoff_s=1, sleep=waits.append
    )
    assert refused == Delivery("flaky", False, 1, "refused for good")
    assert waits == []


def test_a_concept_drift_suspicion_alone_is_a_warning_alert_of_its_own_incident() -> None:
    quiet = summary(drifted_features=[], data_drift_detected=False, model_drift_detected=False)
    plain = parse_summary(quiet)
    assert not plain.needs_alert
    suspected = parse_summary(
        {**quiet, "concept_drift_suspected": True, "concept_drift_reason": "2 of 30 flagged"}
    )
    assert suspected.needs_alert and suspected.severity == "warning"
    assert suspected.incident_key != plain.incident_key
    message = build_message(suspected)
    assert "concept drift suspected" in message.subject
    assert "Concept drift suspected: 2 of 30 flagged" in message.body
