"""`fraudops score`: batch scoring of a file (or, on Dask, a folder or a lake table)."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudops.cli._common import (
    EngineOption,
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
        str,
        typer.Option(
            "--input",
            "-i",
            help="CSV or Parquet file with the spec's features. With --engine dask: a Parquet "
            "file, a folder of Parquet files, a quoted glob ('data/*.parquet') or a lake table "
            "(lake:transactions).",
        ),
    ],
    output_path: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="Result file; .csv or .parquet (replaced if it exists). With --engine dask: a "
            "folder of part-NNNNN.parquet files (a previous result is replaced; a folder "
            "holding other files is refused) or lake:predictions (appended in one commit).",
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
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score every row of a file with a registered model and write ids + probability,
    prediction, risk tier, model name and version.

    The input is validated against the spec like `lake load` does; a bad file exits 2 naming the
    columns and rows, and writes nothing. The output appears at once, complete (temp + rename).

    With --engine dask the partitions are scored on the cluster (each worker loads the model
    once) with the same checks and numbers; a bad row is named by its file and row, and nothing
    is written. Paths must be readable by the workers (a shared filesystem on a real cluster).
    """
    from fraudops.batch.score import score as score_batch
    from fraudops.runtime import Runtime

    settings = settings_from(ctx)
    with Runtime(settings, spec, engine=engine) as runtime, RichReporter() as progress:
        report = score_batch(
            runtime.engine,
            settings,
            runtime.spec,
            input_path,
            output_path,
            lake_factory=runtime.lake_factory(),
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
