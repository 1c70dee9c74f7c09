"""The demo job: generate → lake init → load → train → serve → traffic → logged predictions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fraudops.config import Settings
from fraudops.progress import Reporter


@dataclass
class DemoResult:
    spec: str
    rows: int
    data_files: dict[str, Any]
    load: dict[str, Any]
    training: dict[str, Any]
    exit_code: int
    home: str
    catalog_uri: str
    tracking_uri: str
    mlflow_ui: str
    serving: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_demo(
    settings: Settings,
    *,
    rows: int | None = None,
    requests: int = 2000,
    progress: Reporter | None = None,
) -> DemoResult:
    """Run the whole job on embedded defaults. Re-runnable: the load replaces `transactions`."""
    from fraudops.data.files import write_datasets
    from fraudops.lake import Lake
    from fraudops.orchestration.training_pipeline import run_training

    progress = progress or Reporter()
    if rows is not None:
        # Later traffic is generated at the same scale as the training data (velocity features).
        settings = settings.model_copy(
            update={"data": settings.data.model_copy(update={"rows": rows})}
        )
    spec = settings.feature_spec("transactions30")
    files = write_datasets(settings, spec, settings.data_dir, rows=rows, progress=progress)
    lake = Lake(settings, spec)
    with progress.step("Creating lake tables"):
        lake.init()
    report = lake.load_file(files.transactions, mode="replace", progress=progress)
    result = run_training(settings, spec_name=spec.name, progress=progress, raise_on_gate=False)
    serving = monitoring = None
    if result.champion_after is not None and requests > 0:
        serving = serve_and_log(settings, spec.name, requests=requests, progress=progress)
        monitoring = monitor_clean_then_drifted(
            settings, spec.name, requests=requests, progress=progress
        )
    return DemoResult(
        spec=spec.name,
        rows=report.rows,
        data_files=files.to_dict(),
        load=report.to_dict(),
        training=result.to_dict(),
        exit_code=result.exit_code,
        home=str(settings.home_dir),
        catalog_uri=settings.catalog_uri,
        tracking_uri=settings.tracking_uri,
        mlflow_ui=f"mlflow ui --backend-store-uri {settings.tracking_uri}",
        serving=serving,
        monitoring=monitoring,
        timings=dict(progress.timings),
    )


# The simulator draws label = prediction with this probability (seed 000's knob; its default
# 0.85 flips 15% of labels, which on a 0.5% fraud rate reads as a near-random model), and the
# drifted traffic loses DEMO_MODEL_DRIFT of it (the seed's model-drift scenario).
DEMO_LABEL_ACCURACY = 0.99
DEMO_MODEL_DRIFT = 0.15


def monitor_clean_then_drifted(
    settings: Settings, spec_name: str, *, requests: int, progress: Reporter
) -> dict[str, Any]:
    """Labels for the served predictions, a check on the clean traffic, then drifted traffic
    (the configured drift rules) through the server and a second check.

    Labels come from the seed's simulator and arrive over 1-30 days, so both checks are made
    as of a month from now (``--now`` in the CLI), over a window that holds the traffic.
    """
    from datetime import UTC, datetime, timedelta

    from fraudops.labels.simulate import simulate_labels
    from fraudops.orchestration.monitoring import run_monitoring

    later = datetime.now(UTC) + timedelta(days=31)
    with progress.step("Simulating delayed labels"):
        labels = simulate_labels(settings, spec_name, now=later, accuracy=DEMO_LABEL_ACCURACY)
    clean = run_monitoring(
        settings, spec_name=spec_name, now=later, window_days=40, progress=progress
    )
    drift_started = datetime.now(UTC)
    drifted_traffic = serve_and_log(
        settings, spec_name, requests=requests, progress=progress, drifted=True
    )
    with progress.step("Simulating labels with model drift"):
        drifted_labels = simulate_labels(
            settings,
            spec_name,
            now=later,
            accuracy=DEMO_LABEL_ACCURACY,
            model_drift_mag=DEMO_MODEL_DRIFT,
            drift_from=drift_started,
        )
    drifted = run_monitoring(
        settings,
        spec_name=spec_name,
        now=later + timedelta(minutes=1),
        window_days=40,
        progress=progress,
    )
    return {
        "label_accuracy": DEMO_LABEL_ACCURACY,
        "model_drift_mag": DEMO_MODEL_DRIFT,
        "labels": labels.to_dict(),
        "drifted_labels": drifted_labels.to_dict(),
        "clean": _check_summary(clean),
        "drifted": _check_summary(drifted),
        "drifted_traffic": drifted_traffic["traffic"],
    }


def _check_summary(result: Any) -> dict[str, Any]:
    drift = result.drift or {}
    perf = result.performance
    top = sorted(drift.get("features", []), key=lambda f: -(f.get("psi") or 0))[:5]
    return {
        "run_id": result.run_id,
        "predictions": result.data_window["predictions"],
        "data_drift_detected": result.data_drift_detected,
        "model_drift_detected": result.model_drift_detected,
        "drifted_count": drift.get("drifted_count"),
        "max_severity": drift.get("max_severity"),
        "score_psi": drift.get("score_psi"),
        "top_features": [{k: f.get(k) for k in ("feature", "psi", "severity")} for f in top],
        "roc_auc": (perf.get("metrics") or {}).get("roc_auc"),
        "label_coverage": perf.get("coverage"),
        "reports": result.reports,
        "alert": (result.alert or {}).get("status"),
    }


def serve_and_log(
    settings: Settings,
    spec_name: str,
    *,
    requests: int,
    progress: Reporter,
    drifted: bool = False,
) -> dict[str, Any]:
    """Start the server on a free loopback port, send traffic, stop it, drain the log, and
    read back what reached `predictions`."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from fraudops.errors import FraudopsError
    from fraudops.lake import Lake
    from fraudops.serving.server import child_env, write_settings_file
    from fraudops.serving.traffic import run_traffic
    from fraudops.serving.writer import SpoolWriter

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    settings_file = write_settings_file(settings)
    with progress.step("Starting the server"):
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fraudops.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--spec",
                spec_name,
            ],
            env=child_env(settings_file, spec_name),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.time() + 120
        while True:
            if server.poll() is not None:
                message = server.stderr.read().decode() if server.stderr else ""
                raise FraudopsError(f"the server did not start: {message.strip()[-500:]}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                server.kill()
                raise FraudopsError("the server did not become ready within 120 s")
            time.sleep(0.3)
    try:
        traffic = run_traffic(
            settings,
            n=requests,
            url=url,
            spec_name=spec_name,
            seed=2 if drifted else 1,
            drifted=drifted,
            progress=progress,
        )
    finally:
        with progress.step("Stopping the server"):
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(60)
            except subprocess.TimeoutExpired:
                os.kill(server.pid, signal.SIGKILL)
                server.wait(10)
            settings_file.unlink(missing_ok=True)
    with progress.step("Draining the inference log"):
        writer = SpoolWriter(settings, spec_name)
        try:
            drained = writer.drain_all()
        finally:
            writer.close()
    with progress.step("Reading logged predictions"), Lake.open(settings, spec_name) as lake:
        logged = lake.query(
            "SELECT risk_tier, count(*) AS n, avg(probability) AS mean_probability, "
            "sum(prediction) AS predicted_fraud FROM predictions "
            "GROUP BY risk_tier ORDER BY mean_probability"
        )
        total = lake.count("predictions")
    return {
        "url": url,
        "traffic": traffic.to_dict(),
        "drained": drained.to_dict(),
        "predictions_rows": total,
        "by_risk_tier": logged.to_pylist(),
    }
