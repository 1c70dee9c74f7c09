"""`fraudops demo`: the whole job on embedded defaults, server and logged predictions included."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.serving_support import FRAUDOPS, env_for


def test_demo_trains_serves_and_logs_every_prediction(tmp_path: Path) -> None:
    env = env_for(tmp_path / "fraudops-home")
    done = subprocess.run(
        [*FRAUDOPS, "demo", "--rows", "50000", "--requests", "300", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["training"]["decision"] == "promoted"
    serving = result["serving"]
    assert serving["traffic"]["ok"] == 300 and serving["traffic"]["errors"] == {}
    assert serving["predictions_rows"] == 300
    assert sum(row["n"] for row in serving["by_risk_tier"]) == 300
    monitoring = result["monitoring"]
    assert monitoring["labels"]["written"] > 0
    assert monitoring["clean"]["predictions"] == 300
    assert monitoring["drifted"]["predictions"] == 600
    assert not monitoring["clean"]["data_drift_detected"]
    assert monitoring["drifted"]["data_drift_detected"]
    assert monitoring["drifted"]["max_severity"] in {"MODERATE", "CRITICAL"}
