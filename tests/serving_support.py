"""Helpers for tests that run a real `fraudops serve` process and put load on it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fraudops.config import Settings, load_settings
from fraudops.data.synthetic import generate_transactions
from tests.waiting import wait_for

FRAUDOPS = [sys.executable, "-m", "fraudops.cli"]


def train_champion(home: Path, rows: int = 20_000, *, times: int = 1) -> Settings:
    """A home whose lake holds synthetic data and whose registry has a champion (``times``
    trainings: versions 1..times, the last one champion)."""
    from fraudops.lake import Lake, load_file
    from fraudops.runtime import Runtime
    from fraudops.training.pipeline import run_training

    settings = load_settings(home=home)
    spec = settings.feature_spec("transactions30")
    frame = generate_transactions(settings.data, spec, rows=rows, seed=7)
    path = home.parent / "transactions.parquet"
    frame.to_parquet(path)
    with Lake.open(settings, spec.name) as lake:
        lake.init()
        load_file(lake, path)
    with Runtime(settings, spec.name) as runtime:
        for _ in range(times):
            run_training(runtime.training_context(), raise_on_gate=False)
    return settings


def transactions(settings: Settings, n: int, seed: int = 3) -> list[dict[str, Any]]:
    spec = settings.feature_spec("transactions30")
    frame = generate_transactions(settings.data, spec, rows=n, seed=seed)
    rows = frame[[spec.id_column, *spec.feature_names]]
    return [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}
        for rec in rows.to_dict(orient="records")
    ]


def fraud_first(
    settings: Settings, rows: int, seed: int, n: int = 600
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """``n`` request bodies of ``rows`` generated transactions with every fraud among them first
    (the generator's rate is ~0.5 %), and each transaction's true label by its id."""
    spec = settings.feature_spec("transactions30")
    truth = generate_transactions(settings.data, spec, rows=rows, seed=seed)
    fraud = dict(zip(truth[spec.id_column], truth[spec.label_column].astype(int), strict=True))
    every = transactions(settings, rows, seed=seed)
    frauds = [b for b in every if fraud[b["transaction_id"]]]
    others = [b for b in every if not fraud[b["transaction_id"]]]
    return [*frauds, *others[: n - len(frauds)]], fraud


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDOPS_")}
    env.update({"FRAUDOPS_HOME": str(home), "GIT_PYTHON_REFRESH": "quiet", "MPLBACKEND": "Agg"})
    env.update(extra)
    return env


class Server:
    """`fraudops serve` as a child process on a free port."""

    def __init__(self, home: Path, port: int | None = None, **env: str) -> None:
        self.home = home
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env_for(home, **env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Server:
        self.process = subprocess.Popen(
            [*FRAUDOPS, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        process = self.process

        def ready() -> bool:
            try:
                return get_json(self.url + "/readyz")[0] == 200
            except OSError:
                return False

        try:
            wait_for(
                ready,
                f"fraudops serve ready on {self.url}",
                timeout=timeout,
                poll=0.2,
                process=process,
                detail=lambda: exited_stderr(process),
            )
        except AssertionError:
            process.kill()
            process.wait(10)
            raise
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def exited_stderr(process: subprocess.Popen[bytes]) -> str:
    """The end of an exited process's piped stderr (a running one's would block the read)."""
    if process.poll() is None or process.stderr is None:
        return "(the process is still running)"
    return process.stderr.read().decode(errors="replace")[-3000:]


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def post_json(url: str, body: Any, timeout: float = 5) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@dataclass
class Load:
    """Threads posting single transactions until stopped; what each answer was."""

    url: str
    bodies: list[dict[str, Any]]
    threads: int = 8
    ok: list[tuple[str, str]] = field(default_factory=list)  # (inference_id, model_version)
    failures: list[str] = field(default_factory=list)
    tolerate: Callable[[BaseException], bool] = lambda exc: False
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        for k in range(self.threads):
            worker = threading.Thread(target=self._run, args=(k,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, k: int) -> None:
        i = k
        while not self._stop.is_set():
            body = self.bodies[i % len(self.bodies)]
            i += self.threads
            try:
                status, answer = post_json(self.url + "/v1/predict", body)
            except Exception as exc:  # connection refused/reset once the server is gone
                if not self.tolerate(exc):
                    with self._lock:
                        self.failures.append(repr(exc))
                continue
            with self._lock:
                if status == 200:
                    result = answer["results"][0]
                    self.ok.append((result["inference_id"], answer["model_version"]))
                else:
                    self.failures.append(f"{status}: {answer}")

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(10)

    def wait_for(self, n: int, timeout: float = 60) -> None:
        """Return once ``n`` answers were 200s; AssertionError (with the failures) if not in
        ``timeout`` s."""
        wait_for(
            lambda: len(self.ok) >= n,
            f"{n} successful answers (have {len(self.ok)})",
            timeout=timeout,
            poll=0.05,
            detail=lambda: f"failures: {self.failures[:5]}",
        )


def drain(home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [*FRAUDOPS, "log-writer", "--once", "--json"],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def logged(settings: Settings) -> pd.DataFrame:
    from fraudops.lake import Lake

    with Lake.open(settings, "transactions30") as lake:
        return lake.read_frame("predictions", columns=["inference_id", "model_version"])


def wait_logged(settings: Settings, ids: set[str], timeout: float = 90) -> pd.DataFrame:
    """The logged rows once every id in ``ids`` is there (a running writer is draining)."""
    last: list[pd.DataFrame] = []

    def landed() -> bool:
        last[:] = [logged(settings)]
        return ids <= set(last[0]["inference_id"])

    wait_for(
        landed,
        f"{len(ids)} records in the lake",
        timeout=timeout,
        poll=0.5,
        detail=lambda: f"{len(ids - set(last[0]['inference_id']))} never reached the lake",
    )
    return last[0]
