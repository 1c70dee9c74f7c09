"""A model saved as an MLflow Model, with our manifest beside: MLflow's tools and ours both load it.

The directory a version is registered from holds:

- XGBoost: MLflow's ``xgboost`` flavor — the Booster in XGBoost's own format (``model.ubj`` or
  ``model.json``, never pickle), carrying the real feature names so a DataFrame scores by name —
  whose ``python_function`` flavor is MLflow's own.
- logistic regression: a ``python_function`` "model from code" (``logreg_pyfunc.py``, NumPy only)
  over the parameters as JSON (``artifacts/logreg.json``): nothing pickled either.
- both: ``MLmodel`` with a signature (the spec's features in order, typed as the spec types
  them; one probability out), the environment files, and ``fraudops.json``, our manifest
  (kind, features, threshold, spec; ``model.json`` may be MLflow's XGBoost JSON file), which
  ``load_model_dir`` reads without importing MLflow.

``mlflow.pyfunc.load_model(<dir or models:/name@alias>).predict(frame)`` then returns the fraud
probabilities our scorer gives for the same rows.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.errors import FraudopsError
from fraudops.models.portable import (
    MLFLOW_MANIFEST_FILE,
    LogRegModel,
    ModelManifest,
    ScoringModel,
    XGBoostModel,
)
from fraudops.spec import FeatureSpec

# MLflow (and xgboost, pandas) are imported inside the functions: ~1.7 s that only saving pays.

LOGREG_CODE = Path(__file__).with_name("logreg_pyfunc.py")
LOGREG_PARAMS = "logreg.json"
XGBOOST_FORMATS = ("ubj", "json")


def save_model(model: ScoringModel, directory: Path | str, spec: FeatureSpec | None = None) -> Path:
    """Write ``model`` as an MLflow Model in ``directory`` (which must not exist or be empty).

    With ``spec``, the signature types each feature as the spec does (``long`` for integer
    features, ``double`` otherwise), so a DataFrame read from the lake's types passes MLflow's
    schema check as it is; without, every feature is a double.
    """
    directory = Path(directory)
    signature = _signature(model.manifest, spec)
    if isinstance(model, XGBoostModel):
        _save_xgboost(model, directory, signature)
    elif isinstance(model, LogRegModel):
        _save_logreg(model, directory, signature)
    else:
        raise FraudopsError(f"cannot save model kind {model.kind!r} as an MLflow Model")
    return directory


def _save_xgboost(model: XGBoostModel, directory: Path, signature: Any) -> None:
    import mlflow.xgboost
    import xgboost as xgb

    manifest = model.manifest
    fmt = str(manifest.params.get("model_format", "ubj"))
    if fmt not in XGBOOST_FORMATS:
        raise FraudopsError(f"XGBoost model_format {fmt!r}: expected one of {XGBOOST_FORMATS}")
    named = model.booster.copy()  # ours stays nameless: it scores bare matrices
    named.feature_names = list(manifest.feature_names)
    mlflow.xgboost.save_model(
        named,
        str(directory),
        model_format=fmt,
        signature=signature,
        metadata=_metadata(manifest),
        # Given, not inferred: inference would load the model in a subprocess (seconds).
        pip_requirements=[f"xgboost=={xgb.__version__}"],
    )
    _with_files(manifest, booster=f"model.{fmt}").write(directory, MLFLOW_MANIFEST_FILE)


def _save_logreg(model: LogRegModel, directory: Path, signature: Any) -> None:
    import mlflow.pyfunc
    import pandas as pd

    manifest = model.manifest
    with tempfile.TemporaryDirectory(prefix="fraudops-logreg-") as tmp, warnings.catch_warnings():
        # "no input example": the signature is given, an example would only add a file.
        warnings.simplefilter("ignore", UserWarning)
        params = Path(tmp) / LOGREG_PARAMS
        params.write_text(json.dumps(model.parameters.to_dict()))
        mlflow.pyfunc.save_model(
            str(directory),
            python_model=str(LOGREG_CODE),
            artifacts={"parameters": str(params)},
            model_config={"feature_names": list(manifest.feature_names)},
            signature=signature,
            metadata=_metadata(manifest),
            pip_requirements=[f"numpy=={np.__version__}", f"pandas=={pd.__version__}"],
        )
    _with_files(manifest, parameters=f"artifacts/{LOGREG_PARAMS}").write(
        directory, MLFLOW_MANIFEST_FILE
    )


def _with_files(manifest: ModelManifest, **files: str) -> ModelManifest:
    return replace(manifest, files=files)


def _signature(manifest: ModelManifest, spec: FeatureSpec | None) -> Any:
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    ints = {f.name for f in spec.model_features if f.dtype == "int"} if spec else set()
    return ModelSignature(
        inputs=Schema(
            [ColSpec("long" if n in ints else "double", n) for n in manifest.feature_names]
        ),
        outputs=Schema([ColSpec("double")]),
    )


def _metadata(manifest: ModelManifest) -> dict[str, Any]:
    # Shown by MLflow's UI and `mlflow models` tools; the manifest stays the source of truth.
    return {
        "fraudops_kind": manifest.kind,
        "fraudops_spec": manifest.spec,
        "fraudops_threshold": manifest.threshold,
        "fraudops_manifest": MLFLOW_MANIFEST_FILE,
        "output": "fraud probability per row",
    }
