"""`fraudops monitor run` on a real lake and MLflow: clean traffic, drifted traffic, labels."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.alerting.message import parse_summary
from fraudops.config import Settings, load_settings
from fraudops.data.drift import generate_drifted_set
from fraudops.data.synthetic import generate_transactions
from fraudops.inference_log.records import PredictionRecord, encode, parse_line
from fraudops.inference_log.sink import PredictionSink
from fraudops.lake import Lake
from fraudops.monitoring.result import MonitoringResult
from fraudops.monitoring.run import report_for_run, run_monitoring
from fraudops.registry import load_model
from fraudops.runtime import Runtime
from fraudops.scoring import Scorer
from tests.labels_support import ingest
from tests.registry_support import registry_client
from tests.serving_support import train_champion

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


def log_predictions(
    settings: Settings, frame: pd.DataFrame, start: datetime, days: int
) -> list[tuple[str, datetime]]:
    """Score ``frame`` with the champion and log it as served over ``days`` from ``start``."""
    spec = settings.feature_spec("transactions30")
    scorer = Scorer(
        load_model(settings, spec, client=registry_client(settings)), settings.serving.risk_tiers
    )
    X = frame[spec.feature_names].to_numpy(dtype=np.float64)
    scored = scorer.score(X)
    offsets = np.linspace(0, days * 86_400 - 1, len(frame))
    rows = []
    served: list[tuple[str, datetime]] = []
    for i, row in enumerate(X.tolist()):
        served.append((str(uuid.uuid4()), start + timedelta(seconds=float(offsets[i]))))
        record = PredictionRecord(
            inference_id=served[-1][0],
            request_time=served[-1][1],
            model_name=scorer.name,
            model_version=scorer.version,
            run_id=scorer.run_id,
            transaction_id=f"tx-{uuid.uuid4().hex[:12]}",
            customer_id=None,
            amount=row[spec.feature_names.index("transaction_amount")],
            features=dict(zip(spec.feature_names, row, strict=True)),
            probability=float(scored.probabilities[i]),
            prediction=int(scored.predictions[i]),
            threshold=scorer.threshold,
            risk_tier=str(scored.tiers[i]),
            latency_ms=1.0,
            model_latency_ms=0.5,
        )
        rows.append(parse_line(encode(record)))
    with PredictionSink(
        settings, spec.name, open_lake=Runtime(settings, spec.name).lake_factory()
    ) as sink:
        assert sink.commit(rows).written == len(rows)
    return served


def true_labels_as_confirmed(
    settings: Settings, frame: pd.DataFrame, served: list[tuple[str, datetime]], now: datetime
) -> None:
    """The data's own is_fraud as label events, confirmed after the seed's delays (fraud 1-7
    days, legitimate 1-30), keeping those already confirmed at ``now``."""
    rng = np.random.default_rng(3)
    events = []
    for (inference_id, served_at), fraud in zip(served, frame["is_fraud"], strict=True):
        delay = rng.uniform(1, 7) if fraud else rng.uniform(1, 30)
        confirmed = served_at + timedelta(days=float(delay))
        if confirmed <= now:
            events.append(
                {
                    "inference_id": inference_id,
                    "label": int(fraud),
                    "confirmed_at": confirmed.isoformat(),
                    "source": "chargeback",
                }
            )
    report = ingest(settings, "transactions30", events, now=now)
    assert report.written == len(events)


def monitor(settings: Settings, **options: Any) -> MonitoringResult:
    with Runtime(settings) as runtime:
        return run_monitoring(runtime.monitoring_context(), **options)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    home = tmp_path_factory.mktemp("monitoring") / "home"
    settings = train_champion(home, rows=30_000)
    spec = settings.feature_spec("transactions30")
    # 40 days of clean traffic, labels simulated as they would have arrived by AS_OF.
    # A fresh sample at the training data's scale: the generator's velocity features
    # (transactions per customer in 24 h / 7 days) depend on how many rows it makes.
    clean = generate_transactions(settings.data, spec, rows=30_000, seed=21).sample(
        8_000, random_state=0
    )
    served = log_predictions(settings, clean, AS_OF - timedelta(days=40), 40)
    true_labels_as_confirmed(settings, clean, served, AS_OF)
    return settings


def test_clean_traffic_raises_no_drift_and_mature_cohorts_give_performance(
    monitored: Settings,
) -> None:
    result = monitor(monitored, now=AS_OF, html=False)
    assert result.drift is not None
    alarms = [
        (f.feature, f.severity, f.psi, f.effect)
        for f in result.drift.features
        if f.severity != "NORMAL"
    ]
    assert not result.data_drift_detected, alarms
    assert not [f for f in result.drift.features if f.severity == "CRITICAL"]
    perf = result.performance
    assert perf.mature_cohorts > 0 and perf.immature_cohorts > 0
    assert perf.metrics is not None and perf.evaluated_rows >= 100
    assert perf.model_version == result.model_version and perf.other_versions_excluded == 0
    assert result.status == "ok" and result.alert is None
    with Lake.open(monitored, "transactions30") as lake:
        runs = lake.read_frame("monitoring_runs")
        features = lake.read_frame("feature_drift")
    row = runs[runs["run_id"] == result.run_id].iloc[0]
    assert not row["data_drift_detected"] and row["n_current"] == result.data_window.predictions
    summary = json.loads(row["summary"])
    assert summary["model_version"] == result.model_version
    # The alert built from the typed result is the one its recorded JSON summary parses to.
    assert parse_summary(summary) == result.alert_summary()
    # The JSON output keeps its keys (and the drift report's NaN-free figures).
    output = json.loads(json.dumps(result.to_dict(), default=str))
    assert list(output) == [
        "run_id",
        "spec",
        "model_name",
        "model_version",
        "as_of",
        "data_window",
        "performance_window",
        "drift",
        "performance",
        "data_drift_detected",
        "model_drift_detected",
        "status",
        "concept_drift_suspected",
        "signals",
        "skew",
        "reports",
        "alert",
        "mlflow_run_id",
        "timings",
    ]
    assert output["data_window"]["predictions"] == result.data_window.predictions
    assert output["performance"]["evaluated_rows"] == perf.evaluated_rows
    assert "shadow" not in output["performance"]
    assert len(features[features["run_id"] == result.run_id]) == 30
    assert result.mlflow_run_id
    # The fast signals: every prediction day, CBPE beside the realized figures once mature.
    signals = result.signals
    assert signals is not None and not result.concept_drift_suspected
    assert signals.calibration_source == "manifest" or signals.calibration_source.startswith(
        "fallback"
    )
    assert [d.day for d in signals.days] == [c.day for c in perf.cohorts]
    assert [d.mature for d in signals.days] == [c.mature for c in perf.cohorts]
    for day in signals.days:
        assert day.estimate is not None and (day.realized is not None) == day.mature
        assert day.confirmed.confirmed == sum(c.positives for c in perf.cohorts if c.day == day.day)
    assert signals.window is not None and signals.window.n == result.data_window.predictions
    assert signals.window_confirmed is not None and signals.window_confirmed.confirmed > 0
    assert signals.matured is not None and signals.matured_realized is not None
    assert signals.matured_realized.labelled == perf.evaluated_rows
    recorded = summary["signals"]
    assert recorded["concept_drift_suspected"] is False
    assert len(recorded["days"]) == len(signals.days)
    assert recorded["window"]["roc_auc"]["low"] <= recorded["window"]["roc_auc"]["high"]
    assert output["signals"]["days"][0]["provisional"] is not output["signals"]["days"][0]["mature"]


def test_drifted_traffic_flags_credit_limit_critical_and_alerts(
    monitored: Settings, tmp_path: Path
) -> None:
    spec = monitored.feature_spec("transactions30")
    drifted, _ = generate_drifted_set(monitored.data, spec, pattern="run3", rows=30_000, seed=5)
    drifted = drifted.sample(3_000, random_state=0)
    later = AS_OF + timedelta(days=10)
    log_predictions(monitored, drifted, later - timedelta(days=3), 3)
    result = monitor(monitored, now=later, window_days=3, html=True)
    assert result.drift is not None
    assert result.drift.feature("credit_limit").severity == "CRITICAL"
    assert result.data_drift_detected and result.status == "drift"
    assert Path(result.reports["data_drift"]).stat().st_size > 10_000
    # Evidently's report says what the run said: its drifted-column count and verdict.
    from fraudops.monitoring.evidently_drift import drifted_columns

    snapshot = json.loads(Path(result.reports["data_drift_json"]).read_text())
    count, share = drifted_columns(snapshot)
    assert count == result.drift.drifted_count > 0
    assert share == pytest.approx(result.drift.drifted_share)
    assert result.alert is not None and result.alert.status in {"sent", "partial"}
    # Within the cooldown the same incident is not alerted again.
    again = monitor(monitored, now=later + timedelta(minutes=5), window_days=3, html=False)
    assert again.alert is not None and again.alert.status == "suppressed"


def test_reports_on_demand_for_a_recorded_run(monitored: Settings) -> None:
    from fraudops.errors import FraudopsError

    with Runtime(monitored) as runtime:
        result = run_monitoring(runtime.monitoring_context(), now=AS_OF, html=False, alert=False)
        assert "data_drift" not in result.reports  # a routine run stays fast
        paths = report_for_run(runtime.monitoring_context(), result.run_id)
        assert Path(paths["data_drift"]).stat().st_size > 10_000
        assert Path(paths["classification"]).stat().st_size > 10_000
        with pytest.raises(FraudopsError, match="no monitoring run"):
            report_for_run(runtime.monitoring_context(), "mon-nope")


def test_a_run_without_a_champion_says_so(tmp_path: Path) -> None:
    from fraudops.errors import FraudopsError

    with pytest.raises(FraudopsError, match="no version or alias"):
        monitor(load_settings(home=tmp_path / "empty"), now=AS_OF)
