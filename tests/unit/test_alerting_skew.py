"""The skew alert's message: the share, the rows, each skewed feature with its share, its own
incident (model version and skewed features)."""

from __future__ import annotations

from datetime import UTC, datetime

from fraudops.alerting.message import build_message, parse_summary
from fraudops.alerting.skew import SkewSummary, build_skew_message

NOW = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)


def summary(**per_feature: float) -> SkewSummary:
    return SkewSummary(
        run_id="mon-1",
        as_of=NOW.isoformat(),
        model_name="fraudops-cards",
        model_version="4",
        rows=1172,
        share=max(per_feature.values(), default=0.0),
        alert_share=0.001,
        per_feature={"hour": 0.0, **per_feature},
    )


def test_the_message_names_each_skewed_feature_with_its_share() -> None:
    s = summary(cust_nb_tx_1d=0.0256, term_risk_7d=0.5, cust_avg_amt_7d=0.01, is_night=0.002)
    message = build_skew_message(s, now=NOW)
    assert message.severity == "warning"
    assert message.subject == (
        "[fraudops] WARNING training-serving skew: fraudops-cards version 4: 50.0% of 1172 "
        "served rows differ (term_risk_7d 50.0%, cust_nb_tx_1d 2.6%, cust_avg_amt_7d 1.0% "
        "and 1 more)"
    )
    lines = message.body.splitlines()
    skewed = lines[lines.index("Skewed Features (share of rows differing):") + 1 :][:4]
    assert skewed == [
        "- term_risk_7d: 50.0%",
        "- cust_nb_tx_1d: 2.6%",
        "- cust_avg_amt_7d: 1.0%",
        "- is_night: 0.2%",
    ]
    assert "- hour" not in message.body  # no difference: not listed
    assert "Rows Checked: 1172" in lines and "Monitoring Run: mon-1" in lines
    assert lines[-1] == f"Incident: {message.incident_key}"
    assert "term_risk_7d" in message.slack["blocks"][1]["text"]["text"]


def test_its_incident_is_the_version_and_the_skewed_features() -> None:
    one = build_skew_message(summary(cust_nb_tx_1d=0.02), now=NOW).incident_key
    again = build_skew_message(summary(cust_nb_tx_1d=0.3), now=NOW).incident_key
    other = build_skew_message(summary(cust_nb_tx_1d=0.02, hour=0.1), now=NOW).incident_key
    assert one == again != other
    drift = parse_summary({"model_name": "fraudops-cards", "model_version": "4"})
    assert build_message(drift, now=NOW).incident_key != one  # not a drift incident
