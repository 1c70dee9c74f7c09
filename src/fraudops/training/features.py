"""Model inputs from a frame: the spec's features in order as a numeric matrix, and the labels.

Training, evaluation, champion scoring and (later) serving all build their matrix here, so the
column order a model was trained with is the one it is always scored with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fraudops.errors import ValidationError
from fraudops.spec import FeatureSpec

_EXAMPLE_ROWS = 5


def feature_matrix(
    frame: pd.DataFrame, feature_names: Sequence[str], dtype: type[np.floating] = np.float64
) -> np.ndarray:
    """``frame[feature_names]`` as a C-ordered float matrix; a ValidationError names bad columns."""
    missing = [name for name in feature_names if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"missing feature columns {missing} (have {len(frame.columns)} "
            f"columns: {list(frame.columns)[:12]}...)"
        )
    try:
        matrix = frame[list(feature_names)].to_numpy(dtype=dtype)
    except (TypeError, ValueError) as exc:
        bad = [n for n in feature_names if not pd.api.types.is_numeric_dtype(frame[n])]
        raise ValidationError(f"non-numeric feature columns {bad}: {exc}") from None
    _require_finite(matrix, feature_names, frame.index)
    return np.ascontiguousarray(matrix)


def label_vector(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """The label column as int8 0/1; anything else is a ValidationError naming the rows."""
    column = spec.label_column
    if column not in frame.columns:
        raise ValidationError(f"missing label column {column!r}")
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        rows = frame.index[bad][:_EXAMPLE_ROWS].tolist()
        examples = frame[column][bad].head(_EXAMPLE_ROWS).tolist()
        raise ValidationError(
            f"label column {column!r} must be 0 or 1: {int(bad.sum())} rows are "
            f"not (rows {rows}, values {examples})"
        )
    return values.astype(np.int8)


def validate_training_frame(frame: pd.DataFrame, spec: FeatureSpec, *, min_rows: int = 100) -> None:
    """What training needs beyond the lake's load checks: the columns, enough rows, both classes."""
    missing = [
        c
        for c in [spec.timestamp_column, spec.label_column, *spec.feature_names]
        if c not in frame.columns
    ]
    if missing:
        raise ValidationError(f"transactions lack columns {missing} required by spec {spec.name!r}")
    if len(frame) < min_rows:
        raise ValidationError(
            f"transactions hold {len(frame)} rows: training needs at least {min_rows}"
        )
    if frame[spec.timestamp_column].isna().any():
        rows = frame.index[frame[spec.timestamp_column].isna()][:_EXAMPLE_ROWS].tolist()
        raise ValidationError(f"timestamp column {spec.timestamp_column!r} is empty in rows {rows}")
    labels = label_vector(frame, spec)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise ValidationError(
            f"label column {spec.label_column!r} holds one class only "
            f"({positives} positives in {len(labels)} rows)"
        )


def _require_finite(matrix: np.ndarray, names: Sequence[str], index: pd.Index) -> None:
    finite = np.isfinite(matrix)
    if finite.all():
        return
    bad_cols = np.flatnonzero(~finite.all(axis=0))
    parts = []
    for col in bad_cols[:_EXAMPLE_ROWS]:
        rows = index[~finite[:, col]][:_EXAMPLE_ROWS].tolist()
        parts.append(f"{names[col]!r} ({int((~finite[:, col]).sum())} rows, e.g. {rows})")
    raise ValidationError("missing or infinite feature values in " + ", ".join(parts))
