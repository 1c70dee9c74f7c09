"""`fraudops features`: the derived features computed from the lake's transactions."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import JsonOption, SpecOption, emit, kv_table, out, settings_from
from fraudops.errors import ValidationError

app = typer.Typer(
    help="Derived features (spec `derived:`), point in time, from the lake.", no_args_is_help=True
)

FORMATS = (".parquet", ".csv")


def _bound(value: str | None, option: str, kind: str) -> dt.datetime | float | None:
    if value is None:
        return None
    if kind == "seconds":
        try:
            return float(value)
        except ValueError:
            raise ValidationError(
                f"{option}: {value!r} is no number of seconds (this spec's times are seconds)"
            ) from None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{option}: {value!r} is not an ISO date or time") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


def _after(start: dt.datetime | float, end: dt.datetime | float) -> bool:
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return start >= end
    return float(start) >= float(end)  # type: ignore[arg-type]  # both seconds here


@app.command("export")
def export(
    ctx: typer.Context,
    out_path: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="File to write: .parquet or .csv (replaced if it exists)."
        ),
    ],
    spec: SpecOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--from", help="First event time (ISO; seconds for a `seconds` spec), inclusive."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--to", help="Last event time, exclusive (ISO or seconds).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the lake's transactions with every feature, each computed as known at its row's
    time: id, timestamp, keys, the plain and the derived features, and the label.

    Windows before --from are read as history, so the first rows' features are complete."""
    import time

    from fraudops.features import derive_from_lake
    from fraudops.runtime import Runtime

    suffix = out_path.suffix.lower()
    if suffix not in FORMATS:
        raise ValidationError(f"--out {str(out_path)!r}: write a .parquet or a .csv file")
    settings = settings_from(ctx)
    began = time.perf_counter()
    with Runtime(settings, spec) as runtime:
        lake = runtime.lake()
        feature_spec = lake.spec
        kind = feature_spec.timestamp_kind
        start, end = _bound(since, "--from", kind), _bound(until, "--to", kind)
        if start is not None and end is not None and _after(start, end):
            raise ValidationError(f"--from {since} is not before --to {until}")
        frame = derive_from_lake(lake, feature_spec, start=start, end=end)
    # Written beside the target then renamed: a reader never sees half a file.
    partial = out_path.with_name(f".{out_path.name}.partial")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(partial, index=False)
    else:
        frame.to_parquet(partial, index=False)
    os.replace(partial, out_path)
    derived = [d.name for d in feature_spec.derived]
    result = {
        "spec": feature_spec.name,
        "rows": len(frame),
        "derived_features": derived,
        "columns": list(frame.columns),
        "out": str(out_path),
        "seconds": round(time.perf_counter() - began, 3),
    }
    shown = {**result, "derived_features": ", ".join(derived), "columns": len(frame.columns)}
    emit(result, as_json, lambda: out.print(kv_table(f"Features of {feature_spec.name}", shown)))
