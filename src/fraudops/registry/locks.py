"""One champion move at a time per registered model, across threads, processes and machines.

Moving the champion is two writes to two systems (MLflow's alias, then a ``model_events`` row in
the lake) preceded by a read (the champion before). Two moves interleaved could record the same
``champion_before`` or leave the newest event naming another version than the alias. Every
move therefore holds the model's lock from the read to the event:

- on a PostgreSQL tracking store (``mlflow.tracking_uri: postgresql://...``), a PostgreSQL
  session advisory lock on that database, keyed by the model name: every machine that shares
  the registry shares the lock, and it dies with the holder's connection;
- otherwise (the default SQLite store, a file on one machine), an ``flock`` on
  ``<home>/locks/champion-<model>.lock``, released by the kernel if the holder dies.

Re-entrant within a process (a governance action holds it and calls ``move_champion``, which
takes it again); threads of one process queue on a lock of their own first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fraudops.config import Settings
from fraudops.errors import FraudopsError

LOCK_TIMEOUT_S = 120.0  # an action waits this long for the one before it
_POLL_S = 0.02


class ChampionLockTimeout(FraudopsError):
    """Another champion move of the same model held the lock for too long."""


_guard = threading.Lock()
_threads: dict[str, threading.RLock] = {}
_depth: dict[str, int] = {}  # held cross-process locks of this process, by key


def lock_kind(settings: Settings) -> str:
    """``postgres-advisory`` or ``file``: what ``champion_lock`` uses with these settings."""
    return "postgres-advisory" if settings.tracking_uri.startswith("postgres") else "file"


@contextlib.contextmanager
def champion_lock(
    settings: Settings, model_name: str, timeout_s: float = LOCK_TIMEOUT_S
) -> Iterator[None]:
    """Hold ``model_name``'s champion lock (see the module docstring)."""
    key = f"{settings.tracking_uri}|{model_name}"
    with _guard:
        local = _threads.setdefault(key, threading.RLock())
    if not local.acquire(timeout=timeout_s):
        raise _timeout(model_name, timeout_s)
    try:
        if _depth.get(key, 0):
            _depth[key] += 1
            try:
                yield
            finally:
                _depth[key] -= 1
            return
        with _cross_process(settings, model_name, timeout_s):
            _depth[key] = 1
            try:
                yield
            finally:
                _depth[key] = 0
    finally:
        local.release()


def _cross_process(
    settings: Settings, model_name: str, timeout_s: float
) -> contextlib.AbstractContextManager[None]:
    if lock_kind(settings) == "postgres-advisory":
        return _advisory_lock(settings.tracking_uri, model_name, timeout_s)
    return _file_lock(settings.home_dir / "locks", model_name, timeout_s)


@contextlib.contextmanager
def _file_lock(folder: Path, model_name: str, timeout_s: float) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)
    fd = os.open(folder / f"champion-{safe}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise _timeout(model_name, timeout_s) from None
                time.sleep(_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def advisory_key(model_name: str) -> int:
    """The signed 64-bit advisory-lock key of a model (stable across processes)."""
    digest = hashlib.blake2b(f"fraudops-champion:{model_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def _advisory_lock(uri: str, model_name: str, timeout_s: float) -> Iterator[None]:
    import sqlalchemy as sa

    engine = sa.create_engine(uri, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f"SET lock_timeout = {int(timeout_s * 1000)}"))
            key = advisory_key(model_name)
            try:
                connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            except sa.exc.OperationalError as exc:
                if "lock timeout" in str(exc):
                    raise _timeout(model_name, timeout_s) from None
                raise
            connection.commit()  # the lock is the session's, not the transaction's
            try:
                yield
            finally:
                _unlock(connection, key)
    finally:
        engine.dispose()


def _unlock(connection: Any, key: int) -> None:
    import sqlalchemy as sa

    with contextlib.suppress(sa.exc.SQLAlchemyError):  # a lost connection released it already
        connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        connection.commit()


def _timeout(model_name: str, timeout_s: float) -> ChampionLockTimeout:
    return ChampionLockTimeout(
        f"another champion move of {model_name!r} held its lock for over {timeout_s:g} s; "
        "nothing was changed, try again"
    )
