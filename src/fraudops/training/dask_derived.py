"""Derived features on Dask: the same values as the local engine's, from partitions shuffled by
key.

A window feature of a key needs every row of that key, in time order, in one place: per key
the few columns it reads (id, time, key, value, label) are shuffled so that each key's rows
land in one partition, each partition computes that key's features with the local engine's
code (features/offline.py: sorted NumPy, the same order and sums, so the same bits), and the
values join back to the rows on the transaction id. Calendar features read one row: computed
where the rows are. The joined table is persisted on the workers: the three slices, the
profile and the champion's scores all read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudops.features import needed_columns, with_derived
from fraudops.spec import FeatureSpec
from fraudops.training.derived_rows import derived_dtypes, lake_id_column, lake_id_spec

if TYPE_CHECKING:
    import dask.dataframe as dd


def derive_dask(frame: dd.DataFrame, spec: FeatureSpec) -> dd.DataFrame:
    """``frame`` (the lake's raw transactions, with the id, keys, time, plain features and
    label) with every derived feature of ``spec`` added."""
    spec = lake_id_spec(spec)
    id_column = lake_id_column(spec)
    dtypes = derived_dtypes(spec)
    calendar = [d for d in spec.derived if d.calendar is not None]
    out = frame
    if calendar:
        part_spec = spec.model_copy(update={"derived": calendar})
        out = out.map_partitions(
            _derive_part, part_spec, None, meta=_meta(frame._meta, part_spec, dtypes)
        )
    for key in dict.fromkeys(d.by for d in spec.derived if d.by is not None):
        key_spec = spec.model_copy(update={"derived": [d for d in spec.derived if d.by == key]})
        columns = needed_columns(key_spec)
        ids_only = [id_column]
        values = (
            frame[columns]
            .shuffle(on=key)
            .map_partitions(
                _derive_part,
                key_spec,
                ids_only,
                meta=_meta(frame._meta[ids_only], key_spec, dtypes),
            )
        )
        out = out.merge(values, on=id_column, how="left")
    return out


def _meta(base: pd.DataFrame, spec: FeatureSpec, dtypes: dict[str, np.dtype]) -> pd.DataFrame:
    meta = base.iloc[:0].copy()
    for d in spec.derived:
        meta[d.name] = pd.Series(dtype=dtypes[d.name])
    return meta


def _derive_part(frame: pd.DataFrame, spec: FeatureSpec, keep: list[str] | None) -> pd.DataFrame:
    """One partition's rows (``keep`` columns, default all) with ``spec``'s derived features;
    every row of a key is in this partition (the shuffle's doing) or the features read one
    row."""
    base = frame if keep is None else frame[keep]
    dtypes = derived_dtypes(spec)
    if frame.empty:
        return _meta(base, spec, dtypes)
    done = with_derived(frame.reset_index(drop=True), spec)
    out = base.reset_index(drop=True).copy()
    for d in spec.derived:
        out[d.name] = done[d.name].to_numpy().astype(dtypes[d.name])
    return out
