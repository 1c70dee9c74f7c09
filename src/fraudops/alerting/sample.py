"""The made-up summary `fraudops alerts test` sends (seed 000's example figures)."""

from __future__ import annotations

from datetime import UTC, datetime

from fraudops.alerting.message import AlertSummary, parse_summary


def sample_summary(model_name: str, now: datetime | None = None) -> AlertSummary:
    """A made-up run with seed 000's example figures, for `fraudops alerts test`."""
    as_of = (now or datetime.now(UTC)).astimezone(UTC)
    sample = {
        "run_id": f"test-{as_of:%Y%m%dT%H%M%S}",
        "as_of": as_of.isoformat(timespec="seconds"),
        "model_name": model_name,
        "model_version": "test",
        "features_analyzed": 30,
        "drifted_features": [
            ("credit_limit", 74.47, 0.0, "high"),
            ("merchant_category_code", 28.25, 0.0, "high"),
            ("transaction_amount", 0.41, 0.0012, "high"),
        ],
        "performance": {"roc_auc": 0.5713, "baseline_roc_auc": 0.92},
        "data_drift_detected": True,
        "model_drift_detected": True,
        "reports": {"note": "test alert: no monitoring run behind it"},
    }
    return parse_summary(sample)
