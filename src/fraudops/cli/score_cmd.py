"""`fraudops score`: batch scoring of a file without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import (
    JsonOption,
    RichReporter,
    SpecOption,
    emit,
    kv_table,
    out,
    settings_from,
)


def score(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Option("--input", "-i", help="CSV or Parquet file with the spec's features.")
    ],
    output_path: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Result file; .csv or .parquet (replaced if it exists)."
        ),
    ],
    spec: SpecOption = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Model version or alias (default: the champion)."),
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="Add the top reason codes as a JSON text column.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Score every row of a file with a registered model and write ids + probability,
    prediction, risk tier, model name and version.

    The input is validated against the spec like `lake load` does; a bad file exits 2 naming the
    columns and rows, and writes nothing. The output appears at once, complete (temp + rename).
    """
    from fraudops.batch.score import score_file

    settings = settings_from(ctx)
    with RichReporter() as progress:
        report = score_file(
            settings,
            input_path,
            output_path,
            spec_name=spec,
            version=version,
            explain=explain,
            progress=progress,
        )
    summary = report.to_dict()
    emit(
        summary,
        as_json,
        lambda: out.print(
            kv_table(
                f"Scored {report.rows:,} rows with {report.model_name} v{report.model_version}",
                {
                    "output": report.output,
                    "columns": ", ".join(report.columns),
                    "predicted fraud": f"{report.predicted_fraud:,} ({report.fraud_share:.2%})",
                    "risk tiers": ", ".join(f"{k} {v:,}" for k, v in report.risk_tiers.items()),
                    "seconds": f"{report.seconds:.2f}",
                    "rows/s": f"{report.rows_per_s:,.0f}",
                },
            )
        ),
    )
