"""Our small, portable model interface: a manifest plus files any language could read.

A model directory holds ``model.json`` (the manifest: kind, feature names in order, threshold, spec,
trainer params, creation time, and the files below) and the kind's own files: the XGBoost Booster in
XGBoost's UBJ/JSON format, or the logistic regression's scaler, bin edges and coefficients as JSON.
Nothing is pickled, so loading a model never executes code from an artifact store, and loading
never imports MLflow.

``save`` writes that bare layout (what versions registered before MLflow Models held); registered
versions are written by ``fraudops.models.mlflow_model.save_model``, an MLflow Model with the same
manifest beside it, which ``load_model_dir`` reads the same way.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from fraudops.errors import FraudopsError
from fraudops.models.xgboost_native import load_native

MANIFEST_FILE = "model.json"  # the bare layout's manifest
# In an MLflow Model directory: ``model.json`` may be MLflow's name for an XGBoost JSON model.
MLFLOW_MANIFEST_FILE = "fraudops.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelManifest:
    kind: str
    feature_names: list[str]
    threshold: float
    spec: str
    params: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    files: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # The isotonic calibrator (models/calibration.py, ``Calibrator.to_dict``) fitted on held-out
    # scores, and the operating point (models/decision.py, ``OperatingPoint.to_dict``); None on
    # versions trained before them, which decide by ``threshold`` alone.
    calibration: dict[str, Any] | None = None
    decision: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, directory: Path) -> ModelManifest:
        """The manifest of an MLflow Model directory (``fraudops.json``) or of the bare layout."""
        path = Path(directory) / MLFLOW_MANIFEST_FILE
        if not path.is_file():
            path = Path(directory) / MANIFEST_FILE
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise FraudopsError(f"no model manifest at {path}") from None
        except json.JSONDecodeError as exc:
            raise FraudopsError(f"model manifest {path} is not valid JSON: {exc}") from None
        if raw.get("format_version") != FORMAT_VERSION:
            raise FraudopsError(
                f"model manifest {path} has format_version "
                f"{raw.get('format_version')!r}; this fraudops reads "
                f"{FORMAT_VERSION}"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})

    def write(self, directory: Path, name: str = MANIFEST_FILE) -> None:
        (Path(directory) / name).write_text(json.dumps(self.to_dict(), indent=2))


class ScoringModel(Protocol):
    """What training, the registry and serving need from any model kind."""

    kind: ClassVar[str]
    manifest: ModelManifest

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability per row of ``X`` (columns in ``manifest.feature_names`` order)."""
        ...

    def contributions(self, X: np.ndarray, *, approximate: bool = False) -> np.ndarray:
        """Per-feature log-odds contributions, shape (rows, features + 1); the last column is the
        bias, and each row sums to the model's log-odds for that row. ``approximate`` allows a
        cheaper attribution where the model kind has one (XGBoost: Saabas instead of TreeSHAP,
        ~30× faster on 400 trees)."""
        ...

    def feature_importance(self) -> dict[str, float]: ...

    def with_threshold(self, threshold: float) -> Self: ...

    def with_decision(
        self,
        threshold: float,
        calibration: dict[str, Any] | None,
        decision: dict[str, Any] | None,
    ) -> Self:
        """The same model with its operating point (``manifest.threshold``, ``.calibration``,
        ``.decision``) replaced."""
        ...

    def save(self, directory: Path) -> Path: ...

    @classmethod
    def load(cls, directory: Path) -> Self: ...


class Predictor(Protocol):
    """Something that computes a model's probabilities for a (rows, features) matrix."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...


def _check_width(X: np.ndarray, manifest: ModelManifest) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != len(manifest.feature_names):
        raise ValueError(
            f"expected a (rows, {len(manifest.feature_names)}) matrix in the order "
            f"{manifest.feature_names[:3]}..., got shape {X.shape}"
        )
    return X


class XGBoostModel:
    """An XGBoost Booster saved in XGBoost's own format; scores via ``inplace_predict``.

    A loaded model keeps the saved bytes and scores through libxgboost's C API
    (``xgboost_native``) until something needs the Python ``Booster`` (contributions,
    importance, the flat forest), which is then built from the same bytes: a process that only
    scores never pays ``import xgboost``.
    """

    kind: ClassVar[str] = "xgboost"

    def __init__(
        self,
        booster: Any,
        manifest: ModelManifest,
        *,
        raw: bytes | None = None,
        predictor: Predictor | None = None,
    ) -> None:
        if booster is None and raw is None:
            raise ValueError("an XGBoostModel needs a booster or its saved bytes")
        self._booster = booster
        self._raw = raw
        self._native = load_native(raw) if booster is None and raw is not None else None
        self._predictor = predictor
        self.manifest = manifest

    @property
    def booster(self) -> Any:
        """The ``xgboost.Booster`` (built on first use from the loaded bytes)."""
        if self._booster is None:
            import xgboost as xgb  # ~1-3 s (scikit-learn, SciPy): only when really needed

            booster = xgb.Booster(model_file=bytearray(self._raw or b""))
            # The MLflow Model's copy carries the real feature names (for DataFrames); we score
            # bare matrices in manifest order, which a named booster refuses in ``predict``.
            booster.feature_names = None
            self._booster = booster
        return self._booster

    def saved_bytes(self) -> bytes:
        """The model in XGBoost's UBJ format: the bytes it was loaded from, when it was."""
        if self._raw is not None:
            return self._raw
        return bytes(self.booster.save_raw(raw_format="ubj"))

    def model_json(self) -> bytes:
        """The model in XGBoost's JSON format (its trees), without the package when loaded."""
        if self._native is not None and self._booster is None:
            return self._native.save_json()
        return bytes(self.booster.save_raw(raw_format="json"))

    @property
    def predictor(self) -> Predictor | None:
        """What computes the probabilities instead of XGBoost's predictor, if anything."""
        return self._predictor

    def with_predictor(self, predictor: Predictor | None) -> XGBoostModel:
        """The same model, its probabilities computed by ``predictor`` (one that gives XGBoost's
        numbers, such as ``fraudops.models.compiled.CompiledForest``); None: XGBoost's own."""
        model = copy.copy(self)  # shares the booster(s): nothing is loaded again
        model._predictor = predictor
        return model

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = _check_width(X, self.manifest)
        if self._predictor is not None:
            return self._predictor.predict(X)
        if self._native is not None and self._booster is None:
            return self._native.predict(X)
        scores = self.booster.inplace_predict(X, predict_type="value")
        return np.asarray(scores, dtype=np.float64)

    def contributions(self, X: np.ndarray, *, approximate: bool = False) -> np.ndarray:
        import xgboost as xgb  # imported by self.booster already: no cost here

        X = _check_width(X, self.manifest)
        contribs = self.booster.predict(
            xgb.DMatrix(X), pred_contribs=True, approx_contribs=approximate
        )
        return np.asarray(contribs, dtype=np.float64)

    def feature_importance(self) -> dict[str, float]:
        # The booster knows features as f0, f1, ... (loading drops any names): names live in
        # the manifest.
        gains = self.booster.get_score(importance_type="total_gain")
        return {
            name: float(gains.get(f"f{i}", 0.0))
            for i, name in enumerate(self.manifest.feature_names)
        }

    def with_threshold(self, threshold: float) -> XGBoostModel:
        return self.with_decision(threshold, self.manifest.calibration, self.manifest.decision)

    def with_decision(
        self,
        threshold: float,
        calibration: dict[str, Any] | None,
        decision: dict[str, Any] | None,
    ) -> XGBoostModel:
        manifest = replace(
            self.manifest, threshold=float(threshold), calibration=calibration, decision=decision
        )
        if self._booster is None:
            return XGBoostModel(None, manifest, raw=self._raw, predictor=self._predictor)
        return XGBoostModel(self._booster, manifest, predictor=self._predictor)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        fmt = self.manifest.params.get("model_format", "ubj")
        booster_file = f"booster.{fmt}"
        self.booster.save_model(str(directory / booster_file))
        replace(self.manifest, files={"booster": booster_file}).write(directory)
        return directory

    @classmethod
    def load(cls, directory: Path) -> XGBoostModel:
        manifest = ModelManifest.read(directory)
        path = Path(directory) / manifest.files["booster"]
        if path.suffix != ".ubj":  # XGBoost loads its JSON format from a file only
            import xgboost as xgb  # ~1-3 s: the JSON format is not the default

            booster = xgb.Booster()
            booster.load_model(str(path))
            booster.feature_names = None  # as in ``booster``: we score bare matrices
            return cls(booster, manifest)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise FraudopsError(f"cannot read the XGBoost model {path}: {exc}") from None
        return cls(None, manifest, raw=raw)


@dataclass(frozen=True)
class BinnedFeature:
    """One-hot quantile bins of one feature: bin k holds edges[k-1] <= x < edges[k]."""

    index: int
    edges: np.ndarray
    coef: np.ndarray  # one per bin: len(edges) + 1

    def bin_of(self, column: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, column, side="right")


@dataclass(frozen=True)
class LogRegParameters:
    means: np.ndarray
    scales: np.ndarray
    coef: np.ndarray  # on the standardised features
    intercept: float
    binned: list[BinnedFeature]

    def to_dict(self) -> dict[str, Any]:
        return {
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "binned": [
                {"index": b.index, "edges": b.edges.tolist(), "coef": b.coef.tolist()}
                for b in self.binned
            ],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> LogRegParameters:
        return cls(
            means=np.asarray(raw["means"], dtype=np.float64),
            scales=np.asarray(raw["scales"], dtype=np.float64),
            coef=np.asarray(raw["coef"], dtype=np.float64),
            intercept=float(raw["intercept"]),
            binned=[
                BinnedFeature(
                    int(b["index"]),
                    np.asarray(b["edges"], dtype=np.float64),
                    np.asarray(b["coef"], dtype=np.float64),
                )
                for b in raw["binned"]
            ],
        )


class LogRegModel:
    """Standardised features plus one-hot quantile bins, linear in log-odds; scored in NumPy."""

    kind: ClassVar[str] = "logreg"
    PARAMS_FILE = "logreg.json"

    def __init__(self, parameters: LogRegParameters, manifest: ModelManifest) -> None:
        self.parameters = parameters
        self.manifest = manifest

    def contributions(self, X: np.ndarray, *, approximate: bool = False) -> np.ndarray:
        X = _check_width(X, self.manifest).astype(np.float64, copy=False)
        p = self.parameters
        parts = (X - p.means) / p.scales * p.coef
        for binned in p.binned:
            parts[:, binned.index] += binned.coef[binned.bin_of(X[:, binned.index])]
        bias = np.full((len(X), 1), p.intercept)
        return np.hstack([parts, bias])

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logit = self.contributions(X).sum(axis=1)
        return _sigmoid(logit)

    def feature_importance(self) -> dict[str, float]:
        # Standardised coefficients are comparable; a binned feature adds its bins' spread.
        p = self.parameters
        weight = np.abs(p.coef)
        for binned in p.binned:
            weight[binned.index] += float(np.ptp(binned.coef))
        return dict(zip(self.manifest.feature_names, weight.tolist(), strict=True))

    def with_threshold(self, threshold: float) -> LogRegModel:
        return self.with_decision(threshold, self.manifest.calibration, self.manifest.decision)

    def with_decision(
        self,
        threshold: float,
        calibration: dict[str, Any] | None,
        decision: dict[str, Any] | None,
    ) -> LogRegModel:
        manifest = replace(
            self.manifest, threshold=float(threshold), calibration=calibration, decision=decision
        )
        return LogRegModel(self.parameters, manifest)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / self.PARAMS_FILE).write_text(json.dumps(self.parameters.to_dict()))
        replace(self.manifest, files={"parameters": self.PARAMS_FILE}).write(directory)
        return directory

    @classmethod
    def load(cls, directory: Path) -> LogRegModel:
        manifest = ModelManifest.read(directory)
        raw = json.loads((Path(directory) / manifest.files["parameters"]).read_text())
        return cls(LogRegParameters.from_dict(raw), manifest)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow warnings for large |z|.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


MODEL_KINDS: dict[str, type[XGBoostModel] | type[LogRegModel]] = {
    XGBoostModel.kind: XGBoostModel,
    LogRegModel.kind: LogRegModel,
}


def load_model_dir(directory: Path | str) -> ScoringModel:
    """Load whichever kind of model the manifest in ``directory`` declares."""
    manifest = ModelManifest.read(Path(directory))
    try:
        model_class = MODEL_KINDS[manifest.kind]
    except KeyError:
        raise FraudopsError(
            f"model in {directory} has unknown kind {manifest.kind!r}; known: {sorted(MODEL_KINDS)}"
        ) from None
    return model_class.load(Path(directory))
