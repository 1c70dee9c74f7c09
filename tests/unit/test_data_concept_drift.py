"""Concept drift injection: high-value legitimate transactions turned fraud, features untouched."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.config import ConceptDrift
from fraudops.data.concept_drift import flip_high_value
from fraudops.errors import ConfigError
from fraudops.spec import TRANSACTIONS30


def _frame() -> pd.DataFrame:
    amounts = np.arange(1000, dtype=float)
    return pd.DataFrame({"transaction_amount": amounts, "is_fraud": (amounts % 7 == 0).astype(int)})


def test_concept_drift_turns_the_high_value_legitimate_rows_into_fraud() -> None:
    frame = _frame()
    drift = ConceptDrift(amount_quantile=0.99)
    out = flip_high_value(frame, TRANSACTIONS30, drift, np.random.default_rng(0))
    high = frame["transaction_amount"] >= np.quantile(frame["transaction_amount"], 0.99)
    assert high.sum() == 10
    assert out.loc[high, "is_fraud"].eq(1).all()  # every high-value row is fraud now
    assert out.loc[~high, "is_fraud"].equals(frame.loc[~high, "is_fraud"])  # the rest untouched
    assert out["transaction_amount"].equals(frame["transaction_amount"])  # labels only
    assert frame["is_fraud"].sum() < out["is_fraud"].sum()  # the input frame is not modified


def test_flip_share_flips_about_that_share_of_the_high_value_legitimate_rows() -> None:
    amounts = np.arange(100_000, dtype=float)
    frame = pd.DataFrame({"transaction_amount": amounts, "is_fraud": np.zeros(100_000, int)})
    drift = ConceptDrift(amount_quantile=0.9, flip_share=0.25)
    out = flip_high_value(frame, TRANSACTIONS30, drift, np.random.default_rng(1))
    assert out["is_fraud"].sum() == pytest.approx(10_000 * 0.25, rel=0.06)
    assert out.loc[amounts < 90_000, "is_fraud"].sum() == 0
    again = flip_high_value(frame, TRANSACTIONS30, drift, np.random.default_rng(1))
    assert again.equals(out)  # the rng decides which: same stream, same rows


def test_a_spec_without_an_amount_column_is_refused_by_name() -> None:
    spec = TRANSACTIONS30.model_copy(update={"name": "no_amount", "amount_column": None})
    with pytest.raises(ConfigError, match="'no_amount' has no amount_column"):
        flip_high_value(_frame(), spec, ConceptDrift(), np.random.default_rng(0))
