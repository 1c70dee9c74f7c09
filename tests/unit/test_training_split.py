from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.errors import ValidationError
from fraudops.training.features import feature_matrix, label_vector, validate_training_frame
from fraudops.training.split import time_split
from tests.unit.training_fixtures import SMALL_SPEC, make_frame


def test_split_is_time_ordered_disjoint_and_complete() -> None:
    frame = make_frame(3000, seed=1)
    split = time_split(frame, SMALL_SPEC, validation_fraction=0.1, holdout_fraction=0.2)
    train, val, hold = split.train, split.validation, split.holdout
    assert len(train) + len(val) + len(hold) == len(frame)
    assert train["ts"].max() < val["ts"].min()
    assert val["ts"].max() < hold["ts"].min()
    ids = pd.concat([train["txn_id"], val["txn_id"], hold["txn_id"]])
    assert ids.is_unique and set(ids) == set(frame["txn_id"])
    assert len(train) == pytest.approx(2100, abs=5)
    assert len(hold) == pytest.approx(600, abs=5)
    summary = split.summary()
    assert summary["train_rows"] == len(train)
    assert summary["holdout_end"] == str(frame["ts"].max())


def test_ties_never_straddle_a_cut() -> None:
    frame = make_frame(2000, seed=2)
    # Coarse timestamps: every hour holds many rows, so naive cuts would split tie groups.
    frame["ts"] = frame["ts"].dt.floor("D")
    split = time_split(frame, SMALL_SPEC, validation_fraction=0.1, holdout_fraction=0.2)
    assert split.train["ts"].max() < split.validation["ts"].min()
    assert split.validation["ts"].max() < split.holdout["ts"].min()


def test_ties_are_broken_by_id_whatever_the_input_order() -> None:
    frame = make_frame(1000, seed=3)
    frame["ts"] = frame["ts"].dt.floor("D")
    a = time_split(frame, SMALL_SPEC, validation_fraction=0.1, holdout_fraction=0.2)
    b = time_split(
        frame.sample(frac=1, random_state=7),
        SMALL_SPEC,
        validation_fraction=0.1,
        holdout_fraction=0.2,
    )
    assert a.train["txn_id"].tolist() == b.train["txn_id"].tolist()


def test_numeric_seconds_timestamps_split_too() -> None:
    frame = make_frame(1000, seed=4)
    frame["ts"] = (frame["ts"] - frame["ts"].min()).dt.total_seconds()
    split = time_split(frame, SMALL_SPEC, validation_fraction=0.2, holdout_fraction=0.2)
    assert split.train["ts"].max() < split.validation["ts"].min()


def test_a_slice_without_fraud_is_refused_with_its_time_range() -> None:
    frame = make_frame(2000, seed=5)
    late = frame["ts"] >= frame["ts"].quantile(0.75)
    frame.loc[late, "label"] = 0
    with pytest.raises(ValidationError, match=r"holdout slice .* no fraud rows"):
        time_split(frame, SMALL_SPEC, validation_fraction=0.1, holdout_fraction=0.2)


def test_bad_fractions_are_refused() -> None:
    with pytest.raises(ValidationError, match="validation_fraction"):
        time_split(make_frame(500), SMALL_SPEC, validation_fraction=0.6, holdout_fraction=0.5)


def test_feature_matrix_keeps_spec_order_and_names_bad_columns() -> None:
    frame = make_frame(100, seed=6)
    X = feature_matrix(frame, SMALL_SPEC.feature_names)
    assert X.shape == (100, 5) and X.dtype == np.float64
    np.testing.assert_array_equal(X[:, 2], frame["hour"].to_numpy())
    frame.loc[[3, 17], "velocity"] = np.nan
    with pytest.raises(ValidationError, match=r"'velocity' \(2 rows, e.g. \[3, 17\]\)"):
        feature_matrix(frame, SMALL_SPEC.feature_names)
    with pytest.raises(ValidationError, match=r"missing feature columns \['amount'\]"):
        feature_matrix(frame.drop(columns="amount"), SMALL_SPEC.feature_names)


def test_labels_must_be_binary() -> None:
    frame = make_frame(50, seed=7)
    frame.loc[4, "label"] = 2
    with pytest.raises(ValidationError, match=r"label column 'label' must be 0 or 1: 1 rows"):
        label_vector(frame, SMALL_SPEC)


def test_training_frame_needs_both_classes() -> None:
    frame = make_frame(500, seed=8)
    frame["label"] = 0
    with pytest.raises(ValidationError, match="one class only"):
        validate_training_frame(frame, SMALL_SPEC)
