"""`fraudops simulate`, the control scenario: no drift, so no retrain and no drift alert.

Apart from tests/e2e/test_simulation.py (same configuration) so that `make test`'s workers run
the two simulations side by side.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_simulation import simulate


def test_the_control_triggers_no_retrain_and_no_drift_alert(tmp_path: Path) -> None:
    control = simulate(tmp_path, "control", "--months", "4")  # 17 weekly runs, no drift
    assert control["outcome"]["quiet"], control["outcome"]
    assert control["retrains"] == []
    assert not any(r["alert"] for r in control["monitoring_runs"])
    assert not any(r["data_drift_detected"] for r in control["monitoring_runs"])
    assert {m["champion"] for m in control["month_rows"]} == {control["initial_champion"]}
