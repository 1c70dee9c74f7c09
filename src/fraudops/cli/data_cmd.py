"""`fraudops data`: synthetic data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from fraudops.cli._common import JsonOption, RichReporter, emit, kv_table, out, settings_from

app = typer.Typer(help="Generate synthetic data sets.", no_args_is_help=True)


@app.command("generate")
def generate(
    ctx: typer.Context,
    rows: Annotated[
        int | None, typer.Option(help="Rows of the training set (default: data.rows).", min=1)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: data.seed).")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default: <home>/data).")
    ] = None,
    file_format: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
    patterns: Annotated[
        list[str] | None,
        typer.Option(
            "--pattern", help="Drift pattern(s) for drifted sets (default: all in config)."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the seed's synthetic transactions (transactions30 schema), drifted sets and their
    ground truth. Deterministic for a seed."""
    from fraudops.data.files import write_datasets

    if file_format not in ("parquet", "csv"):
        raise typer.BadParameter("must be parquet or csv", param_hint="--format")
    fmt_: Literal["parquet", "csv"] = "csv" if file_format == "csv" else "parquet"
    settings = settings_from(ctx)
    spec = settings.feature_spec("transactions30")
    with RichReporter() as progress:
        files = write_datasets(
            settings,
            spec,
            out_dir or settings.data_dir,
            rows=rows,
            seed=seed,
            patterns=patterns,
            fmt=fmt_,
            progress=progress,
        )
    summary = files.to_dict()
    emit(summary, as_json, lambda: out.print(kv_table("Generated data", _flat(summary))))


def _flat(summary: dict[str, object]) -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, val in value.items():
                flat[f"{key}.{sub}"] = val
        else:
            flat[key] = value
    return flat
