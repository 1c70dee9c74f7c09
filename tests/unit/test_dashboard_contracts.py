"""PageData's JSON: missing values of every kind become null, times ISO strings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from fraudops.dashboard.contracts import PageData, Table


def test_missing_values_are_null_and_times_iso() -> None:
    frame = pd.DataFrame(
        {
            "at": pd.to_datetime(["2027-01-02T03:04:05Z", None], utc=True),
            "x": [1.5, np.nan],
            "n": pd.array([1, None], dtype="Int64"),
            "s": ["a", None],
        }
    )
    rows = PageData("p", "P", tables=[Table("t", "T", frame)]).to_dict()["tables"][0]["rows"]
    assert rows[0] == ["2027-01-02T03:04:05+00:00", 1.5, 1, "a"]
    assert rows[1] == [None, None, None, None]
    json.dumps(rows)  # every value JSON-ready
