"""`mlflow models serve -m models:/fraudops-<spec>@champion --env-manager local` answers with our
probabilities: a registered version deploys with MLflow's own tools (real subprocess, loopback)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.config import load_settings
from fraudops.data.synthetic import generate_transactions
from fraudops.lake import Lake, load_file
from fraudops.registry import load_model
from fraudops.runtime import Runtime
from fraudops.training.pipeline import run_training
from tests.registry_support import registry_client
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

SMALL: dict[str, Any] = {
    "training": {"xgboost": {"n_estimators": 40, "max_depth": 3}},
    "gate": {"min_roc_auc": 0.5, "min_pr_auc": 0.0, "min_recall": {}},
}
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


@pytest.mark.parametrize("trainer", ["xgboost", "logreg"])
def test_mlflow_models_serve_of_the_champion_answers_our_probabilities(
    tmp_path: Path, trainer: str
) -> None:
    settings = load_settings(home=tmp_path / "home", **SMALL)
    spec = settings.feature_spec()
    train = tmp_path / "train.parquet"
    generate_transactions(settings.data, spec, rows=4000, seed=5).to_parquet(train)
    with Lake.open(settings, spec.name) as lake:
        lake.init()
        load_file(lake, train)
    with Runtime(settings, spec.name) as runtime:
        assert run_training(runtime.training_context(), trainer=trainer).decision == "promoted"
    rows = generate_transactions(settings.data, spec, rows=60, seed=9)
    features = rows[spec.feature_names]
    ours = load_model(settings, client=registry_client(settings)).model.predict_proba(
        features.to_numpy(np.float64)
    )

    port = _free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [
        *([str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]),
        "models",
        "serve",
        "-m",
        f"models:/{settings.registered_model_name(spec.name)}@champion",
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-w",
        "1",
    ]
    env = {
        **os.environ,
        # As in an activated virtualenv: the server runs `uvicorn` from PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_TRACKING_URI": settings.tracking_uri,
        "MLFLOW_REGISTRY_URI": settings.tracking_uri,
    }
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115 — closed with the process
        start_new_session=True,  # the server's workers go with it
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def pinged() -> bool:
            try:
                return _get(f"{base}/ping") == 200
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_for(
            pinged,
            "mlflow models serve answers /ping",
            timeout=START_TIMEOUT_S,
            poll=0.5,
            process=server,
            detail=lambda: (tmp_path / "serve.log").read_text()[-3000:],
        )
        # Rows as an MLflow user sends them: the features by name, ints as ints.
        payload = json.loads(features.to_json(orient="split", index=False))
        body = json.dumps({"dataframe_split": payload}).encode()
        request = urllib.request.Request(
            f"{base}/invocations", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        theirs = np.asarray(answer["predictions"], dtype=np.float64)
        assert theirs.shape == (60,)
        np.testing.assert_allclose(theirs, ours, rtol=1e-6, atol=1e-12)
        # A missing feature is refused by the signature, not scored wrong.
        short = pd.DataFrame(payload["data"], columns=payload["columns"]).drop(
            columns=[spec.feature_names[0]]
        )
        bad = json.dumps({"dataframe_split": json.loads(short.to_json(orient="split"))})
        refused = urllib.request.Request(
            f"{base}/invocations", data=bad.encode(), headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=30)
        assert caught.value.code == 400
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=20)
