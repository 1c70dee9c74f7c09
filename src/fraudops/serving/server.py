"""Running the server: uvicorn with the app, plus the inference-log writer as a child process.

The writer drains the spool into the lake in its own process: an Iceberg commit holds the GIL
for tens of milliseconds, which inside the server would show up straight in the p99. It exits
on its own when the server process is gone (after a last drain), and a restarted server starts
a new one; the spool's writer lock guarantees one drainer at a time.

Worker processes and the writer see exactly the server's settings: they are written to a YAML
file under ``<home>/run`` and passed on as ``FRAUDOPS_CONFIG``.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fraudops.config import Settings
from fraudops.errors import ConfigError

if TYPE_CHECKING:
    from fraudops.runtime import Runtime

SPEC_ENV = "FRAUDOPS_SERVE_SPEC"
CONFIG_ENV = "FRAUDOPS_CONFIG"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: Settings, host: str) -> None:
    if not settings.serving.tokens and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} with no bearer token: set serving.tokens "
            "(e.g. FRAUDOPS_SERVING__TOKENS='[\"a-long-secret\"]') or bind to 127.0.0.1"
        )


def write_settings_file(settings: Settings) -> Path:
    """The effective settings as a YAML file that child processes load as their config."""
    run_dir = settings.home_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"settings-{os.getpid()}.yaml"
    data = settings.model_dump(mode="json")
    data["home"] = str(settings.home_dir)  # children may not share the working folder
    _reveal_secrets(settings, data)  # the JSON dump masks them; the children need them
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds secrets
    with os.fdopen(fd, "w") as fh:
        fh.write(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
    return path


def _reveal_secrets(model: Any, data: Any) -> None:
    """Put the real value of every SecretStr of ``model`` into its JSON dump ``data``."""
    from pydantic import BaseModel, SecretStr

    def walk(value: Any, dumped: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                if isinstance(dumped, dict) and name in dumped:
                    dumped[name] = walk(getattr(value, name), dumped[name])
            return dumped
        if isinstance(value, list) and isinstance(dumped, list):
            return [walk(v, d) for v, d in zip(value, dumped, strict=True)]
        if isinstance(value, dict) and isinstance(dumped, dict):
            for key in value:
                if key in dumped:
                    dumped[key] = walk(value[key], dumped[key])
            return dumped
        return dumped

    walk(model, data)


def child_env(settings_file: Path, spec_name: str) -> dict[str, str]:
    env = dict(os.environ)
    # The file holds the full effective settings; env overrides already went into it.
    for key in list(env):
        if key.startswith("FRAUDOPS_") and key not in ("FRAUDOPS_REQUIRE_SERVICES",):
            env.pop(key)
    env[CONFIG_ENV] = str(settings_file)
    env[SPEC_ENV] = spec_name
    return env


def start_log_writer(
    settings: Settings, spec_name: str, settings_file: Path
) -> subprocess.Popen[bytes]:
    """The spool's drainer, exiting by itself when this process dies.

    Niced: it has seconds of slack, the request path has milliseconds; on a small machine its
    Iceberg commits must not take a core from the server when both want one.
    """
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fraudops.log_writer",  # its own entry point: neither Typer nor the CLI's imports
            "--spec",
            spec_name,
            "--parent-pid",
            str(os.getpid()),
        ],
        env=child_env(settings_file, spec_name),
        preexec_fn=lambda: os.nice(10),
    )


def _ignore(signum: int, frame: Any) -> None:
    return None


def run_server(
    runtime: Runtime,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    log_level: str = "warning",
) -> None:
    import uvicorn

    from fraudops.serving.allocators import bound_allocators

    bound_allocators()  # this process's and, by the environment, the log writer's
    settings, spec = runtime.settings, runtime.spec
    cfg = settings.serving
    host = host or cfg.host
    port = port or cfg.port
    workers = workers or cfg.workers
    check_exposure(settings, host)
    if spec.derived:  # one state of derived features for every worker, or refuse
        from fraudops.features.online_factory import check_online_store

        check_online_store(settings, workers)
    settings_file = write_settings_file(settings)
    writer = None
    if cfg.log_backend == "spool":
        writer = start_log_writer(settings, spec.name, settings_file)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "loop": "uvloop",
        "http": "httptools",
        "timeout_graceful_shutdown": 10,
        # Idle keep-alive connections are closed; a body stalled mid-upload is the app's
        # (serving.body_timeout_s); a stall before the headers end needs a front server.
        "timeout_keep_alive": cfg.keep_alive_s,
    }
    # uvicorn re-raises the SIGTERM/SIGINT it caught once it has shut down, with the handler
    # that was there before it: make that a no-op so this function goes on to stop the writer
    # (its last drain) instead of the process dying with the writer orphaned.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if workers == 1:
            from fraudops.serving.app import create_app

            uvicorn.run(create_app(runtime), **options)
        else:
            # Each worker process builds its own Runtime (runtime.served_app_from_env).
            os.environ.update({CONFIG_ENV: str(settings_file), SPEC_ENV: spec.name})
            uvicorn.run(
                "fraudops.runtime:served_app_from_env", factory=True, workers=workers, **options
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if writer is not None:
            writer.terminate()
            try:
                writer.wait(timeout=30)
            except subprocess.TimeoutExpired:
                writer.kill()
        settings_file.unlink(missing_ok=True)
