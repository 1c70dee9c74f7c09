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
    spec = settings.feature_spec("transactions30")
    files = write_datasets(settings, spec, settings.data_dir, rows=rows, progress=progress)
    lake = Lake(settings, spec)
    with progress.step("Creating lake tables"):
        lake.init()
    report = lake.load_file(files.transactions, mode="replace", progress=progress)
    result = run_training(settings, spec_name=spec.name, progress=progress, raise_on_gate=False)
    serving = None
    if result.champion_after is not None and requests > 0:
        serving = serve_and_log(settings, spec.name, requests=requests, progress=progress)
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
        timings=dict(progress.timings),
    )


def serve_and_log(
    settings: Settings, spec_name: str, *, requests: int, progress: Reporter
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
            settings, n=requests, url=url, spec_name=spec_name, seed=1, progress=progress
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
