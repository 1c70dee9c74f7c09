"""The model a server answers with, and its hot reload when the registry's champion moves.

A background thread asks the registry which version `champion` points at every
``serving.reload_interval_s``; when it moved, the thread loads the new version (artifacts,
booster) off the request path and then swaps one reference. A request batch reads
``holder.current`` once, so every transaction of a batch is answered — and logged — by the same
version, and no request ever waits for a load.

Shadow scoring: with ``serving.shadow_alias`` set (e.g. ``challenger``), the same check also
loads the version that alias points at into ``holder.shadow`` — unless it is the champion's — and
drops it when the alias goes away or reaches the champion. A shadow that fails to load is logged
and left out; it never touches the champion.
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
from fraudops.scoring import Scorer
from fraudops.spec import FeatureSpec

log = logging.getLogger(__name__)

SHADOW_RETRY_S = 60.0  # a shadow version that failed to load is tried again after this long


class ModelHolder:
    def __init__(
        self,
        settings: Settings,
        spec: FeatureSpec,
        registry: Callable[[], Any],
        *,
        on_swap: Callable[[Scorer], None] | None = None,
    ) -> None:
        self.settings = settings
        # The MLflow client, built on first use in the thread that checks (Runtime.mlflow: the
        # import costs ~1.7 s, paid by the server's start-up check, not by its import).
        self._registry_client = registry
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
        # The version scoring beside the champion (logged only), and why there is none.
        self.shadow: Scorer | None = None
        self.shadow_error: str | None = None
        self._shadow_failed: tuple[str, float] | None = None  # (version, monotonic time)

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
        """Load the champion if it is not the version being served; True when it swapped.

        The shadow (``serving.shadow_alias``) is checked too; its moves do not count as a swap.
        """
        with self._check_lock:
            self.last_check = time.time()
            scorer = self._check_champion()
            self._check_shadow()
        if scorer is not None and self._on_swap is not None:
            self._on_swap(scorer)
        return scorer is not None

    def _registry(self) -> Any:
        if self._client is None:
            self._client = self._registry_client()
        return self._client

    def _check_champion(self) -> Scorer | None:
        """The new champion scorer once swapped in; None when nothing changed or it failed."""
        from fraudops import registry

        try:
            client = self._registry()
            name = self.settings.registered_model_name(self.spec.name)
            version = registry.champion_version(client, self.settings, name)
            if version is None:
                self.last_error = f"no champion for {name} yet: run `fraudops train`"
                return None
            if self.current is not None and self.current.version == version:
                self.last_error = None
                return None
            scorer = self._load(version)
        except Exception as exc:  # any failure: keep serving the model we have
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("champion check failed, still serving %s: %s", self.describe(), exc)
            return None
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
        return scorer

    def _check_shadow(self) -> None:
        from fraudops import registry

        alias = self.settings.serving.shadow_alias
        champion = self.current
        if not alias or champion is None:
            self._drop_shadow("no shadow alias" if not alias else "no champion")
            return
        try:
            name = self.settings.registered_model_name(self.spec.name)
            version = registry.alias_version(self._registry(), name, alias)
        except Exception as exc:  # the registry is unreachable: keep what we have
            self.shadow_error = f"{type(exc).__name__}: {exc}"
            log.warning("shadow check failed, still shadowing with %s: %s", self._sv(), exc)
            return
        if version is None:
            self._drop_shadow(f"alias {alias!r} is not set")
            return
        if version == champion.version:
            self._drop_shadow(f"alias {alias!r} points at the champion")
            return
        if self.shadow is not None and self.shadow.version == version:
            self.shadow_error = None
            return
        failed = self._shadow_failed
        if failed and failed[0] == version and time.monotonic() - failed[1] < SHADOW_RETRY_S:
            return  # it failed to load moments ago: do not reload it on every check
        try:
            scorer = self._load(version)
        except Exception as exc:
            self.shadow = None  # do not go on logging a version the alias has left
            self.shadow_error = f"{type(exc).__name__}: {exc}"
            self._shadow_failed = (version, time.monotonic())
            log.warning("shadow %s=%s not loaded, no shadow scoring: %s", alias, version, exc)
            return
        previous = self._sv()
        self.shadow = scorer
        self.shadow_error = None
        self._shadow_failed = None
        log.info("shadow scoring with %s=%s (was %s)", alias, scorer.version, previous)

    def _drop_shadow(self, why: str) -> None:
        self.shadow_error = None
        self._shadow_failed = None
        if self.shadow is not None:
            log.info("shadow scoring with version %s stopped: %s", self.shadow.version, why)
            self.shadow = None

    def _sv(self) -> str | None:
        shadow = self.shadow
        return None if shadow is None else shadow.version

    def _load(self, version: str) -> Scorer:
        from fraudops import registry

        name = self.settings.registered_model_name(self.spec.name)
        loaded = registry.load_model(self.settings, self.spec, version, client=self._registry())
        if list(loaded.manifest.feature_names) != self.spec.feature_names:
            raise FraudopsError(
                f"{name} version {version} was trained on other features than spec "
                f"{self.spec.name!r} declares; not serving it"
            )
        serving = self.settings.serving
        return Scorer(loaded, serving.risk_tiers, serving.explain_top_k)

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

    def describe_shadow(self) -> dict[str, Any] | None:
        """The shadow version and its alias, or None when no shadow scores."""
        shadow = self.shadow
        if shadow is None:
            return None
        return {
            "alias": self.settings.serving.shadow_alias,
            "model_version": shadow.version,
            "run_id": shadow.run_id,
            "threshold": shadow.threshold,
            "kind": shadow.loaded.manifest.kind,
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
