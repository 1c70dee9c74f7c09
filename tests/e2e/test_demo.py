"""`fraudops demo`: data → first champion → simulated production (one run, read by every test of
the module), and every command it prints works as printed in a fresh shell.

The run is the control scenario over 4 months (17 weekly monitoring runs, no drift): besides the
demo's own output, it must stay quiet — no retrain, no alert, no drift flagged, one champion.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fraudops.progress import HEARTBEAT_SECONDS
from tests.serving_support import FRAUDOPS, env_for, free_port
from tests.waiting import wait_for

ARGS = ["--rows", "50000", "--months", "4", "--tx-per-day", "800", "--scenario", "control"]
CONFIG = "data:\n  fraud_rate: 0.01\n"  # ./fraudops.yaml: the printed commands read it too
MAX_SILENCE = 10.0  # the bound on a gap between progress lines outside a terminal


@dataclass
class Demo:
    cwd: Path
    stdout: str
    stderr: list[tuple[float, str]]  # (monotonic time, line) as the lines arrived
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`fraudops demo` with stderr a pipe (not a terminal): its progress lines timed as they
    come, its table on stdout, its JSON summary from the path it prints."""
    cwd = tmp_path_factory.mktemp("demo")
    (cwd / "fraudops.yaml").write_text(CONFIG)
    env = env_for(cwd / "fraudops-home")
    env["COLUMNS"] = "200"
    process = subprocess.Popen(
        [*FRAUDOPS, "demo", *ARGS],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(process.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    lines = [(time.monotonic(), line.rstrip("\n")) for line in process.stderr]  # type: ignore[union-attr]
    assert process.wait(timeout=600) == 0, "\n".join(line for _, line in lines[-40:])
    reader.join()
    stdout = out[0]
    [summary_path] = [
        line.split(":", 1)[1].strip() for line in stdout.splitlines() if line.startswith("Summary")
    ]
    return Demo(cwd, stdout, lines, json.loads(Path(summary_path).read_text()))


def test_demo_trains_then_simulates_production(demo: Demo) -> None:
    result = demo.summary
    assert result["training"]["decision"] == "promoted"
    assert result["home"] == str((demo.cwd / "fraudops-home" / "simulations" / "control").resolve())
    assert [m["volume"] for m in result["month_rows"]] == [24000] * 4
    assert len(result["monitoring_runs"]) == 120 // 7  # weekly runs over 120 simulated days
    assert Path(result["chart"]).exists()


def test_the_control_triggers_no_retrain_and_no_drift_alert(demo: Demo) -> None:
    control = demo.summary
    assert control["outcome"]["quiet"], control["outcome"]
    assert control["retrains"] == []
    assert not any(r["alert"] for r in control["monitoring_runs"])
    assert not any(r["data_drift_detected"] for r in control["monitoring_runs"])
    assert {m["champion"] for m in control["month_rows"]} == {control["initial_champion"]}


def test_demo_prints_the_month_table_and_where_things_are(demo: Demo, tmp_path: Path) -> None:
    assert "Simulation 'control': 4 months from" in demo.stdout
    for line in ("Chart:", "Summary (JSON):", "Reports:", "Alerts (log):", "MLflow runs:"):
        assert line in demo.stdout
    # A scenario whose onset lies beyond the run is refused before anything is generated.
    bad = subprocess.run(
        [*FRAUDOPS, "demo", "--months", "2", "--scenario", "drift"],
        cwd=tmp_path,
        env=env_for(tmp_path / "fraudops-home"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "after the last simulated month" in bad.stderr


def test_outside_a_terminal_progress_shows_at_least_every_ten_seconds(demo: Demo) -> None:
    gaps = [(b - a, line) for (a, _), (b, line) in itertools.pairwise(demo.stderr)]
    assert max(gap for gap, _ in gaps) <= MAX_SILENCE, max(gaps)  # the line after the longest
    text = [line for _, line in demo.stderr]
    assert any(line.startswith("Simulating 4 months (control): done in") for line in text), text
    # The step that outlasts the heartbeat's period reported its days done and elapsed time.
    beats = [line for line in text if line.startswith("Simulating 4 months (control): ")]
    if demo.summary["timings"]["Simulating 4 months (control)"] > 2 * HEARTBEAT_SECONDS:
        assert any("/120 ... " in line for line in beats), beats


def _printed(stdout: str, label: str) -> str:
    [line] = [line for line in stdout.splitlines() if line.startswith(label)]
    return line.split(":", 1)[1].strip()


def test_the_printed_commands_work_pasted_into_a_fresh_shell(demo: Demo) -> None:
    # A new shell in the checkout: no FRAUDOPS_* variable, the venv not activated (not on PATH).
    shell = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    shell["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    audit = _printed(demo.stdout, "Audit trail")
    done = subprocess.run(
        ["bash", "-c", audit + " --json"], cwd=demo.cwd, env=shell, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert {e["event_type"] for e in json.loads(done.stdout)} >= {"registered", "promoted"}
    dashboard = _printed(demo.stdout, "Dashboard").split("   (http")[0]
    port = free_port()
    server = subprocess.Popen(
        ["bash", "-c", f"exec {dashboard} --port {port}"],
        cwd=demo.cwd,
        env=shell,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def answers() -> bool:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return True
            except OSError:
                return False

        wait_for(answers, "the printed dashboard command answers /healthz", timeout=60, poll=0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)
