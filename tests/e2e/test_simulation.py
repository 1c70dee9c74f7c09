"""`fraudops simulate`: the closed loop on a simulated clock, on a smaller configuration.

The drift scenario must be detected within the first monitoring runs after its onset, retrained
without a manual step, and recover its pre-drift recall within 0.05 (the control scenario, which
must stay quiet, is `fraudops demo`'s run in tests/e2e/test_demo.py). model_events and MLflow
must tell the story.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.serving_support import FRAUDOPS, env_for

CONFIG = """
data:
  rows: 50000
  fraud_rate: 0.01
simulation:
  months: 6
  tx_per_day: 800
  evidence_report: false
  scenarios:
    small_drift:
      description: data drift from month 2, concept drift from month 4
      data_drift_month: 2
      concept_drift_month: 4
    control:
      description: no drift
"""


def simulate(tmp_path: Path, scenario: str, *options: str) -> dict[str, Any]:
    config = tmp_path / "fraudops.yaml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [
            *FRAUDOPS,
            "--config",
            str(config),
            "simulate",
            "--scenario",
            scenario,
            "--json",
            *options,
        ],
        cwd=tmp_path,
        env=env_for(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.fixture(scope="module")
def drift(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return simulate(tmp_path_factory.mktemp("drift"), "small_drift")


def test_drift_is_detected_retrained_on_and_recovered_from(drift: dict[str, Any]) -> None:
    outcome = drift["outcome"]
    assert outcome["detected_at_run"] is not None and outcome["detected_at_run"] <= 2
    assert outcome["retrains"] >= 1 and outcome["promotions"] >= 1
    assert outcome["post_retrain_months"], outcome
    assert outcome["post_retrain_recall"] >= outcome["pre_drift_recall"] - 0.05, outcome
    assert outcome["recovered"]
    months = drift["month_rows"]
    assert [m["month"] for m in months] == list(range(1, 7))
    assert all(m["volume"] == 800 * 30 for m in months)
    # The concept drift hurt before the retrain fixed it (month 4: the share of the fraud amount
    # caught; its recall alone may already recover within the month), and the champion moved.
    month4 = months[3]["amount_caught"] / (months[3]["amount_caught"] + months[3]["amount_missed"])
    assert month4 < outcome["pre_drift_amount_caught_share"] - 0.05
    assert months[-1]["champion"] != drift["initial_champion"]
    assert Path(drift["chart"]).stat().st_size > 10_000
    # Alerts went to the log channel, into the simulation's alert log (not over the table).
    alerts = Path(drift["alerts_log"]).read_text()
    assert alerts.count("ALERT") >= outcome["drift_alerts"] > 0
    assert json.loads(Path(drift["summary_path"]).read_text())["outcome"] == outcome


def test_the_summary_carries_the_fast_signals_cbpe_and_the_onsets(drift: dict[str, Any]) -> None:
    runs = drift["monitoring_runs"]
    with_signals = [r for r in runs if r["signals"]]
    assert len(with_signals) >= len(runs) - 1  # the first run may precede any served day
    for run in with_signals:
        signals = run["signals"]
        assert {"window", "window_confirmed", "days", "calibration"} <= set(signals)
        window = signals["window"]
        assert window["roc_auc"]["low"] <= window["roc_auc"]["value"] <= window["roc_auc"]["high"]
    checked = [r["cbpe_check"] for r in runs if r["cbpe_check"]]
    assert checked and all({"realized_roc_auc", "roc_auc_inside"} <= set(c) for c in checked)
    onsets = {o["kind"]: o for o in drift["outcome"]["onsets"]}
    assert set(onsets) == {"data_drift", "concept_drift"}
    concept = onsets["concept_drift"]
    assert concept["days_to_detection"] is not None and concept["days_to_fix"] is not None
    assert 0 < concept["days_to_detection"] <= concept["days_to_fix"]
    fast = drift["outcome"]["fast_signals"]
    assert fast["runs_checked"] == len(checked) and fast["roc_auc_inside_share"] is not None


def test_model_events_and_mlflow_tell_the_story(drift: dict[str, Any]) -> None:
    import mlflow

    from fraudops.config import load_settings
    from tests.governance_support import model_events

    settings = load_settings(home=Path(drift["home"]))
    events = model_events(settings, "transactions30")
    automatic = events[events["trigger"] == "retrain"]
    assert len(automatic) >= len(drift["retrains"])
    assert set(events["actor"]) == {"simulation"}  # every decision the simulation's own
    runs = {r["run_id"] for r in drift["monitoring_runs"]}
    assert set(automatic["monitoring_run_id"]) <= runs  # every retrain names its monitoring run
    promoted = automatic[automatic["event_type"] == "promoted"].iloc[0]
    metrics = json.loads(promoted["metrics"])
    assert {"roc_auc", "pr_auc", "recall", "champion", "retrain"} <= set(metrics)
    assert {"roc_auc", "pr_auc", "recall"} <= set(metrics["champion"])  # both models' figures
    assert metrics["retrain"]["holdout_positives"] >= 20
    client = mlflow.MlflowClient(tracking_uri=drift["tracking_uri"])
    run = client.get_run(promoted["run_id"])
    assert run.data.tags["trigger"] == "retrain"
    assert run.data.tags["monitoring_run_id"] == promoted["monitoring_run_id"]
    assert run.data.tags["decision"] == "promoted"
    assert "champion_roc_auc" in run.data.metrics and "roc_auc" in run.data.metrics
    # The serving process hot-reloaded the new champion: later traffic names it.
    served = {v for m in drift["month_rows"] for v in m["served_by"]}
    assert promoted["version"] in served


def test_retrain_by_hand_is_judged_the_same_way_and_recorded(drift: dict[str, Any]) -> None:
    from fraudops.config import load_settings
    from tests.governance_support import model_events

    home = Path(drift["home"])
    end = drift["monitoring_runs"][-1]["as_of"]
    done = subprocess.run(
        [*FRAUDOPS, "retrain", "--reason", "audit asked", "--now", end, "--json"],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 4), done.stderr[-3000:]  # promoted, or the champion stays
    result = json.loads(done.stdout)
    assert result["retrain"]["holdout_end"] <= end[:10]
    assert result["gate"]["champion_metrics"]  # judged against the champion on that holdout
    events = model_events(load_settings(home=home), "transactions30")
    mine = events[events["run_id"] == result["run_id"]]
    assert set(mine["trigger"]) == {"manual"}
    assert mine["reason"].str.startswith("audit asked").all()
    # Too early for any mature label: refused with its own exit code, nothing registered.
    early = subprocess.run(
        [*FRAUDOPS, "retrain", "--now", drift["start"]],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert early.returncode == 5, early.stderr[-2000:]
    assert "mature labelled predictions" in early.stderr
