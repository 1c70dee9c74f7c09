"""Real services for integration tests: found, started if down, else skipped (or failed in CI).

`.ci/run` sets FRAUDOPS_REQUIRE_SERVICES=1 so that a missing service fails the run instead of
skipping the tests that need it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from tests.waiting import wait_for

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _start_postgres() -> None:
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") and clusters.is_dir():
        for version in sorted(p.name for p in clusters.iterdir()):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
                timeout=60,
                check=False,
            )


def _start_redis() -> None:
    if shutil.which("redis-server"):
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "-::1",
                "--port",
                str(REDIS_PORT),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )


def require_service(name: str, host: str, port: int, start) -> None:  # type: ignore[no-untyped-def]
    if _port_open(host, port):
        return
    start()
    try:
        wait_for(lambda: _port_open(host, port), f"{name} on {host}:{port}", timeout=10, poll=0.25)
    except AssertionError:
        service_missing(f"{name} is not reachable on {host}:{port} and could not be started")


def service_missing(message: str) -> NoReturn:
    """Skip the test for want of a service, or fail it under FRAUDOPS_REQUIRE_SERVICES=1."""
    if os.environ.get("FRAUDOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (FRAUDOPS_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def require_postgres() -> None:
    require_service("PostgreSQL", PG_HOST, PG_PORT, _start_postgres)


def require_redis() -> None:
    require_service("Redis", REDIS_HOST, REDIS_PORT, _start_redis)


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database ``fraudops_test_<random>``, dropped afterwards; its URI."""
    import psycopg2

    name = f"fraudops_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="test")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
