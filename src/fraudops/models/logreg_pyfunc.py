"""The logistic-regression model as an MLflow python_function, "from code": no pickle.

MLflow copies this file into the model directory and runs it when the model is loaded
(``mlflow.pyfunc.load_model``, ``mlflow models serve``); the parameters come from the JSON
artifact ``parameters`` and the feature order from the model config. It imports only NumPy,
pandas and MLflow, nothing of fraudops, so any MLflow install can load the model. The arithmetic
is ``fraudops.models.portable.LogRegModel.predict_proba``'s (a test holds them equal).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel, PythonModelContext


class FraudopsLogReg(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        raw = json.loads(Path(context.artifacts["parameters"]).read_text())
        self.feature_names: list[str] = list(context.model_config["feature_names"])
        self.means = np.asarray(raw["means"], dtype=np.float64)
        self.scales = np.asarray(raw["scales"], dtype=np.float64)
        self.coef = np.asarray(raw["coef"], dtype=np.float64)
        self.intercept = float(raw["intercept"])
        self.binned = [
            (
                int(b["index"]),
                np.asarray(b["edges"], dtype=np.float64),
                np.asarray(b["coef"], dtype=np.float64),
            )
            for b in raw["binned"]
        ]

    # No type hints here: MLflow would read them as an input schema (the signature is given).
    def predict(self, context, model_input, params=None):
        """Fraud probability per row of a DataFrame holding the features (by name)."""
        if hasattr(model_input, "columns"):
            X = model_input[self.feature_names].to_numpy(dtype=np.float64)
        else:
            X = np.asarray(model_input, dtype=np.float64)
        parts = (X - self.means) / self.scales * self.coef
        for index, edges, coef in self.binned:
            parts[:, index] += coef[np.searchsorted(edges, X[:, index], side="right")]
        # The bias as a last column, summed with the rest: the same float sums as ours.
        z = np.hstack([parts, np.full((len(X), 1), self.intercept)]).sum(axis=1)
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


set_model(FraudopsLogReg())
