from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fraudops.config import Settings, load_settings
from tests.services import fresh_database, require_postgres

# OpenMP threads (XGBoost's training and prediction) sleep while they wait instead of spinning:
# under `make test` every core runs a worker, and spinning threads on oversubscribed cores burned
# most of the suite's CPU (measured here on a loaded machine: 300 XGBoost rounds 16.7 CPU-s
# spinning, 1.4 s passive; a 2-month simulation 50 CPU-s, 27 s passive). Set before any native
# library loads; the CLI runs, servers and Dask workers the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's FRAUDOPS_* variables or a fraudops.yaml of the cwd."""
    for key in list(os.environ):
        if key.startswith("FRAUDOPS_") and key != "FRAUDOPS_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    """Settings on embedded defaults with all state under a fresh temporary home."""
    return load_settings(home=home)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end; yields its URI."""
    require_postgres()
    with fresh_database() as uri:
        yield uri


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    """The test process's LocalCluster (tests/dask_support.py), shared by its Dask modules."""
    from tests.dask_support import local_cluster

    with local_cluster() as cluster:
        yield cluster


# The longest files, started first under `make test` (xdist hands out whole files in collection
# order with --no-loadscope-reorder): one of them last would be the whole run's critical path.
SLOW_FIRST = (
    "tests/e2e/test_simulation.py",
    "tests/e2e/test_demo.py",
    "tests/e2e/test_dashboard_browser.py",
    "tests/integration/test_scaleout_services.py",
    "tests/integration/test_dask_scoring.py",
    "tests/integration/test_dask_training.py",
    "tests/integration/test_monitoring_dask_window.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/e2e carry their marker by folder; the slowest
    files come first."""

    def rank(item: pytest.Item) -> int:
        path = Path(str(item.fspath)).resolve().relative_to(REPO_ROOT).as_posix()
        return SLOW_FIRST.index(path) if path in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: within a file and among the rest, the order is kept
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "e2e" in parts:
            item.add_marker(pytest.mark.e2e)


# FRAUDOPS_TEST_CPU_LOG=<file>: each process (each xdist worker) appends "<cpu seconds>\t<test
# file>" per file it ran, its own and its reaped children's (servers, CLI runs, Dask workers) user
# + sys time; session-scoped fixtures' teardown goes under "(session)". Wall time on a shared
# machine says little; CPU seconds say where the suite's cost is.
CPU_LOG = os.environ.get("FRAUDOPS_TEST_CPU_LOG")
_cpu_by_file: dict[str, float] = {}


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if not CPU_LOG:
        yield
        return
    started = _cpu_seconds()
    yield
    path = Path(str(item.fspath)).resolve().relative_to(REPO_ROOT).as_posix()
    _cpu_by_file[path] = _cpu_by_file.get(path, 0.0) + _cpu_seconds() - started


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    started = _cpu_seconds()
    yield
    if CPU_LOG and _cpu_by_file:
        _cpu_by_file["(session)"] = _cpu_seconds() - started
        with open(CPU_LOG, "a", encoding="utf-8") as log:
            log.writelines(f"{cpu:.1f}\t{path}\n" for path, cpu in _cpu_by_file.items())
