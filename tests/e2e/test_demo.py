"""`fraudops demo`: data → first champion → simulated production, on a short run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.serving_support import FRAUDOPS, env_for


def test_demo_trains_then_simulates_production(tmp_path: Path) -> None:
    env = env_for(tmp_path / "fraudops-home")
    args = ["--rows", "30000", "--months", "2", "--tx-per-day", "300", "--scenario", "control"]
    done = subprocess.run(
        [*FRAUDOPS, "demo", *args, "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["training"]["decision"] == "promoted"
    assert result["home"] == str((tmp_path / "fraudops-home" / "simulations" / "control").resolve())
    assert [m["volume"] for m in result["month_rows"]] == [9000, 9000]
    assert len(result["monitoring_runs"]) == 60 // 7  # weekly runs over 60 simulated days
    assert result["outcome"]["quiet"]
    assert Path(result["chart"]).exists()


def test_demo_prints_the_month_table_and_where_things_are(tmp_path: Path) -> None:
    env = env_for(tmp_path / "fraudops-home")
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [
            *FRAUDOPS,
            "demo",
            "--rows",
            "30000",
            "--months",
            "1",
            "--tx-per-day",
            "200",
            "--scenario",
            "control",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Simulation 'control': 1 month from" in done.stdout
    for line in ("Chart:", "Summary (JSON):", "Reports:", "Alerts (log):", "MLflow runs:"):
        assert line in done.stdout
    # A scenario whose onset lies beyond the run is refused before anything is generated.
    bad = subprocess.run(
        [*FRAUDOPS, "demo", "--months", "2", "--scenario", "drift"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "after the last simulated month" in bad.stderr
