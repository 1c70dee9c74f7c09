"""A registered version shipped to Dask workers once, and built there once.

The client broadcasts a ``ModelShipment`` (XGBoost's saved bytes: its C handle does not pickle;
the model object for the NumPy kinds) and each worker keeps the scorer it builds from it in a
small cache keyed by name, version and the model's hash, so a job of many partitions loads the
model once per worker, and a later job of the same version not at all. The XGBoost path scores
through the compiled forest (``fraudops.models.compiled``: found in the home's cache, where the
client built it, or built on the worker) as the local path does, else XGBoost's predictor.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fraudops.config import RiskTier, Settings
from fraudops.models.compiled import compiled_predictor
from fraudops.models.portable import ModelManifest, ScoringModel, XGBoostModel
from fraudops.registry.loading import LoadedModel
from fraudops.scoring import Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelShipment:
    """A version as a worker needs it: XGBoost's saved bytes (its C handle does not pickle), or
    the model object for the NumPy kinds, plus the serving decisions around it."""

    name: str
    version: str
    run_id: str | None
    source: str
    manifest: ModelManifest
    saved: bytes | None
    model: ScoringModel | None
    tiers: tuple[RiskTier, ...]
    explain_top_k: int
    cache_root: str  # where the worker finds or builds the compiled forest
    digest: str

    @classmethod
    def of(cls, loaded: LoadedModel, settings: Settings) -> ModelShipment:
        model = loaded.model
        saved = model.saved_bytes() if isinstance(model, XGBoostModel) else None
        digest = hashlib.sha256(saved or repr(loaded.manifest).encode()).hexdigest()
        return cls(
            loaded.name,
            loaded.version,
            loaded.run_id,
            loaded.source,
            loaded.manifest,
            saved,
            None if saved is not None else model,
            tuple(settings.serving.risk_tiers),
            settings.serving.explain_top_k,
            str(settings.home_dir / "cache"),
            digest,
        )

    def build(self) -> Scorer:
        model: ScoringModel
        if self.saved is not None:
            xgb_model = XGBoostModel(None, self.manifest, raw=self.saved)
            try:
                forest = compiled_predictor(
                    xgb_model, Path(self.cache_root), self.name, self.version
                )
            except OSError as exc:  # a worker that cannot write the home's cache
                log.warning("%s v%s: no compiled forest here (%s)", self.name, self.version, exc)
                forest = None
            model = xgb_model.with_predictor(forest)
        else:
            assert self.model is not None
            model = self.model
        loaded = LoadedModel(
            model, self.manifest, self.name, self.version, self.run_id, self.source
        )
        return Scorer(loaded, self.tiers, self.explain_top_k, flat_forest=False)


SCORERS: OrderedDict[tuple[str, str, str], Scorer] = OrderedDict()
SCORERS_LOCK = threading.Lock()
SCORERS_KEPT = 4


def worker_scorer(ship: ModelShipment) -> Scorer:
    """The scorer of ``ship``, built on this worker's first partition of it, then reused."""
    key = (ship.name, ship.version, ship.digest)
    with SCORERS_LOCK:
        scorer = SCORERS.get(key)
        if scorer is None:
            scorer = SCORERS[key] = ship.build()
            while len(SCORERS) > SCORERS_KEPT:
                SCORERS.popitem(last=False)
        SCORERS.move_to_end(key)
        return scorer
