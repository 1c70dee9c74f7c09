"""The baseline of bench/serve: a plain FastAPI app, as one would write it first.

A pydantic model of the transaction (fields and ranges from the feature spec), the champion's
XGBoost booster, one ``inplace_predict`` per request, seed 000's response shape; no logging,
no batching. The route is ``async def`` (scored on the event loop): measured faster here than a
sync route, which FastAPI would run in its thread pool, so the baseline is the stronger one.
Run by bench/serve.py with the same uvicorn settings and worker count as fraudops:

    FRAUDOPS_HOME=... uvicorn --factory bench.plain_app:create_app --port 8090
"""

import os

import numpy as np
from fastapi import FastAPI

from fraudops.config import load_settings
from fraudops.registry import load_model
from fraudops.serving.requests import openapi_model


def create_app() -> FastAPI:
    settings = load_settings()
    spec = settings.feature_spec(os.environ.get("FRAUDOPS_SERVE_SPEC"))
    loaded = load_model(settings, spec)
    booster = loaded.model.booster  # type: ignore[attr-defined]
    threshold = loaded.manifest.threshold
    names = spec.feature_names
    Transaction = openapi_model(spec)
    app = FastAPI(title="plain baseline")

    @app.post("/v1/predict")
    async def predict(transaction: Transaction) -> dict:  # type: ignore[valid-type]
        row = np.array([[getattr(transaction, n) for n in names]], dtype=np.float32)
        fraud = float(booster.inplace_predict(row)[0])
        return {
            "predictions": [int(fraud >= threshold)],
            "probabilities": {"fraud": [fraud], "non_fraud": [1.0 - fraud]},
        }

    return app
