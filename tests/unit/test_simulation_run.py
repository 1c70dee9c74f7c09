"""The simulation's own home, its scenario lookup and its alert log."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fraudops.alerting.channels import deliver
from fraudops.alerting.message import AlertMessage
from fraudops.config import Settings
from fraudops.errors import ConfigError
from fraudops.simulation.run import alert_log, scenario_of, simulation_settings


def _message(severity: str) -> AlertMessage:
    return AlertMessage(
        subject=f"[fraudops] {severity.upper()} drift",
        body="Drifted Features: 4\nIncident: k",
        severity=severity,
        incident_key="k",
        run_id="mon-1",
        created_at=datetime(2027, 3, 10, tzinfo=UTC),
    )


def test_alerts_go_to_the_runs_log_file_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "alerts.log"
    with caplog.at_level(logging.DEBUG), alert_log(path) as channel:
        assert channel.name == "log"  # the cooldown counts it like the configured log channel
        delivery = deliver(channel, _message("critical"), retries=0, backoff_s=0)
        deliver(channel, _message("warning"), retries=0, backoff_s=0)
    assert delivery.delivered and delivery.attempts == 1
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith(" ERROR [fraudops] CRITICAL drift")
    assert lines[1:3] == ["Drifted Features: 4", "Incident: k"]
    assert lines[3].endswith(" WARNING [fraudops] WARNING drift")
    assert "drift" not in caplog.text  # not on the console, not in fraudops.alerts' handlers


def test_a_simulation_home_is_embedded_and_alerts_to_the_log(tmp_path: Path) -> None:
    alerts = {"channels": ["webhook"], "webhook_url": "https://hooks.example/x"}
    settings = Settings(home=tmp_path / "home", alerts=alerts)
    sim = simulation_settings(settings, "drift")
    assert sim.home_dir == (tmp_path / "home" / "simulations" / "drift").resolve()
    assert sim.alerts.channels == ["log"] and sim.serving.log_backend == "spool"
    assert sim.lake.catalog_uri is None and sim.mlflow.tracking_uri is None
    assert simulation_settings(settings, "drift", tmp_path / "x").home_dir == tmp_path / "x"


def test_an_unknown_scenario_names_the_known_ones() -> None:
    name, plan = scenario_of(Settings(), None)
    assert name == "drift" and plan.data_drift_month == 4 and plan.concept_drift_month == 7
    with pytest.raises(ConfigError, match=r"unknown scenario 'storm'.*concept_drift, control"):
        scenario_of(Settings(), "storm")
