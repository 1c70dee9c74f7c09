"""The model a server answers with, and its hot reload when the registry's champion moves.

A background thread asks the registry which version `champion` points at every
``serving.reload_interval_s``; when it moved, the thread loads the new version (artifacts,
booster) off the request path and then swaps one reference. A request batch reads
``holder.current`` once, so every transaction of a batch is answered — and logged — by the same
version, and no request ever waits for a load.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.serving.scoring import Scorer
from fraudops.spec import FeatureSpec

log = logging.getLogger(__name__)


class ModelHolder:
    def __init__(
        self,
        settings: Settings,
        spec: FeatureSpec,
        *,
        on_swap: Callable[[Scorer], None] | None = None,
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.current: Scorer | None = None
        self.last_error: str | None = None
        self.last_check: float | None = None
        self.reloads = 0
        self._on_swap = on_swap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._check_lock = threading.Lock()
        self._client: Any = None

    @property
    def ready(self) -> bool:
        return self.current is not None

    def start(self) -> None:
        """Load the champion now (if any), then keep watching it in the background."""
        self.check()
        self._thread = threading.Thread(target=self._watch, name="fraudops-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def check(self) -> bool:
        """Load the champion if it is not the version being served; True when it swapped."""
        from fraudops.training import registry
        from fraudops.training.tracking import mlflow_client

        with self._check_lock:
            self.last_check = time.time()
            try:
                if self._client is None:
                    self._client = mlflow_client(self.settings)
                name = self.settings.registered_model_name(self.spec.name)
                version = registry.champion_version(self._client, self.settings, name)
                if version is None:
                    self.last_error = f"no champion for {name} yet: run `fraudops train`"
                    return False
                if self.current is not None and self.current.version == version:
                    self.last_error = None
                    return False
                loaded = registry.load_model(self.settings, self.spec, version, client=self._client)
                if list(loaded.manifest.feature_names) != self.spec.feature_names:
                    raise FraudopsError(
                        f"{name} version {version} was trained on other features than spec "
                        f"{self.spec.name!r} declares; not serving it"
                    )
            except Exception as exc:  # any failure: keep serving the model we have
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("champion check failed, still serving %s: %s", self.describe(), exc)
                return False
            serving = self.settings.serving
            scorer = Scorer(loaded, serving.risk_tiers, serving.explain_top_k)
            previous = self.current
            self.current = scorer  # the atomic swap: one reference assignment
            self.reloads += previous is not None
            self.last_error = None
            log.info(
                "serving %s version %s (was %s)",
                scorer.name,
                scorer.version,
                previous.version if previous else None,
            )
        if self._on_swap is not None:
            self._on_swap(scorer)
        return True

    def describe(self) -> dict[str, Any] | None:
        scorer = self.current
        if scorer is None:
            return None
        return {
            "model_name": scorer.name,
            "model_version": scorer.version,
            "run_id": scorer.run_id,
            "threshold": scorer.threshold,
            "kind": scorer.loaded.manifest.kind,
            "feature_names": scorer.feature_names,
        }

    def _watch(self) -> None:
        interval = self.settings.serving.reload_interval_s
        store = _sqlite_file(self.settings.tracking_uri)
        seen = _mtime(store)
        while not self._stop.wait(interval):
            # On the embedded SQLite store an alias move is a write to its file: skip the
            # registry query (milliseconds of GIL each time, felt in the p99) while the file is
            # untouched. Other stores are asked every interval.
            if store is not None:
                now = _mtime(store)
                if now == seen and self.current is not None:
                    continue
                seen = now
            self.check()


def _sqlite_file(uri: str) -> Path | None:
    prefix = "sqlite:///"
    return Path(uri[len(prefix) :]) if uri.startswith(prefix) else None


def _mtime(path: Path | None) -> tuple[float, float] | None:
    """Modification times of the SQLite file and its WAL (writes may land in either)."""
    if path is None:
        return None
    stamps = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        try:
            stamps.append(candidate.stat().st_mtime)
        except OSError:
            stamps.append(0.0)
    return stamps[0], stamps[1]
