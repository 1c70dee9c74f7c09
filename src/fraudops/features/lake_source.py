"""The offline engine over the lake: the loaded transactions with every derived feature, each
row as known at its time (a loaded row's label is known at the row's own time)."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from fraudops.derived import Agg
from fraudops.errors import ValidationError
from fraudops.features.offline import derive_all, needed_columns, require_derived
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc

if TYPE_CHECKING:
    from fraudops.lake import Lake

Bound = dt.datetime | float | None


def export_columns(spec: FeatureSpec) -> list[str]:
    """What an export holds, in order: id, timestamp, customer and keys, every feature (plain
    then derived), the label."""
    # Imported here: the lake's schemas mean pyiceberg, which derive() alone never needs.
    from fraudops.lake.schemas import transaction_id_column

    cols = [transaction_id_column(spec), spec.timestamp_column]
    cols += [c for c in (spec.customer_column, *spec.keys) if c is not None]
    cols += [*spec.feature_names, spec.label_column]
    return list(dict.fromkeys(cols))


def with_derived(
    frame: pd.DataFrame,
    spec: FeatureSpec,
    *,
    emit: np.ndarray | pd.Series | None = None,
    label_known_at: np.ndarray | pd.Series | None = None,
    label_events: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The emitted rows of ``frame`` with the derived features added (``derive``'s columns
    replace same-named ones); the arguments are ``derive``'s."""
    done = derive_all(frame, spec, label_known_at=label_known_at, label_events=label_events)
    mask = np.ones(len(frame), dtype=bool) if emit is None else np.asarray(emit, dtype=bool)
    rows = frame[mask].copy()
    for name, values in done.values.items():
        rows[name] = values[mask]
    return rows


def history_seconds(spec: FeatureSpec) -> int:
    """How far back before a row its features read, in whole seconds: the longest window +
    delay, and ``key_ttl_s`` for ``time_since_last`` (an older previous row counts as none)."""
    lookback = max((d.lookback_s for d in spec.derived), default=0)
    if any(d.agg is Agg.time_since_last for d in spec.derived):
        # + 1 s: a margin for float-second times rounded to the µs at the bound
        return max(lookback, math.ceil(spec.key_ttl_us / 1_000_000) + 1)
    return lookback


def derive_from_lake(
    lake: Lake, spec: FeatureSpec | None = None, *, start: Bound = None, end: Bound = None
) -> pd.DataFrame:
    """The lake's transactions with event time in [start, end) (default: all), with every
    feature, in ``export_columns`` order, sorted by (time, id). The rows before ``start`` that
    the windows reach are read too, as history. Times are datetimes for a ``datetime`` spec,
    seconds for a ``seconds`` one."""
    from fraudops.lake.schemas import transaction_id_column

    spec = spec or lake.spec
    require_derived(spec)
    id_column = transaction_id_column(spec)
    wanted = export_columns(spec)
    computed = {d.name for d in spec.derived}
    columns = [
        c
        for c in dict.fromkeys([*wanted, *needed_columns(spec)])
        if c != id_column and c not in computed
    ]
    columns.insert(0, id_column)
    lookback = history_seconds(spec)
    since = None if start is None else _minus(start, lookback)
    table = lake.read("transactions", columns, _time_filter(spec, since, end))
    if table.num_rows == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in wanted})
    # Text columns stay Arrow-backed: converting 1.75M ids to Python strings costs seconds.
    frame = table.to_pandas(types_mapper=_arrow_text)
    done = derive_all(frame, _with_lake_id(spec, id_column))
    keep = done.order
    if start is not None:
        emit = (frame[spec.timestamp_column] >= _as_column_value(spec, start)).to_numpy()
        keep = keep[emit[keep]]
    plain = [c for c in wanted if c not in done.values]
    rows = frame[plain].take(keep).reset_index(drop=True)
    for name, values in done.values.items():
        rows[name] = values[keep]
    return rows[wanted]


def _arrow_text(kind: pa.DataType) -> pd.ArrowDtype | None:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pd.ArrowDtype(kind)
    return None


def _with_lake_id(spec: FeatureSpec, id_column: str) -> FeatureSpec:
    # A spec without id_column: the lake generated one on load; it orders same-time rows.
    if spec.id_column == id_column:
        return spec
    return spec.model_copy(update={"id_column": id_column})


def _minus(bound: dt.datetime | float, seconds: int) -> dt.datetime | float:
    if isinstance(bound, dt.datetime):
        return bound - dt.timedelta(seconds=seconds)
    return float(bound) - seconds


def _as_column_value(spec: FeatureSpec, bound: dt.datetime | float) -> object:
    if spec.timestamp_kind == "seconds":
        if isinstance(bound, dt.datetime):
            raise ValidationError(
                f"spec {spec.name!r} has times in seconds: give --from/--to as seconds"
            )
        return float(bound)
    if not isinstance(bound, dt.datetime):
        raise ValidationError(f"spec {spec.name!r} has datetimes: give --from/--to as dates")
    return pd.Timestamp(as_utc(bound))


def _time_filter(spec: FeatureSpec, since: Bound, end: Bound) -> str | None:
    parts = []
    for op, bound in ((">=", since), ("<", end)):
        if bound is None:
            continue
        if isinstance(bound, dt.datetime):
            literal = f"'{as_utc(bound).isoformat()}'"
        else:
            literal = repr(float(bound))
        parts.append(f"{spec.timestamp_column} {op} {literal}")
    return " and ".join(parts) or None
