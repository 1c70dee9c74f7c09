"""`fraudops labels`: ground truth — load confirmed labels, simulate them, see their coverage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from fraudops.cli._common import (
    JsonOption,
    SpecOption,
    emit,
    err,
    kv_table,
    out,
    records_table,
    settings_from,
)
from fraudops.errors import ValidationError

app = typer.Typer(
    help="Ground truth: label events for logged predictions (load, simulate, coverage).",
    no_args_is_help=True,
)

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now", help="Evaluate as of this ISO time (UTC if no offset); default: the clock."
    ),
]


def _time(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{option}: {value!r} is not an ISO date or time") from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


@app.command("load")
def load(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="CSV, Parquet or JSON-lines file: inference_id and/or transaction_id, label, "
            "confirmed_at, source, notes."
        ),
    ],
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Append a file of label events; unknown ids, duplicates and conflicts are reported.

    A malformed row refuses the whole file (the row named), nothing written.
    """
    from fraudops.labels.files import load_label_file
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        report = load_label_file(runtime.lake(), path, listeners=runtime.commits).to_dict()

    def render() -> None:
        out.print(
            kv_table(
                f"Labels from {path.name} into {report['spec']}.labels",
                {
                    "events received": report["received"],
                    "rows written": report["written"],
                    "resolved by transaction_id": report["resolved_by_transaction"],
                    "unknown ids": len(report["unknown"]),
                    "duplicates": len(report["duplicates"]),
                    "conflicts": len(report["conflicts"]),
                },
            )
        )
        _problems(report)

    emit(report, as_json, render)


def _problems(report: dict[str, Any]) -> None:
    shown = 10
    for name in ("unknown", "duplicates"):
        items = report[name]
        if items:
            out.print(
                records_table(
                    f"{name} ({len(items)}" + (f", first {shown})" if len(items) > shown else ")"),
                    items[:shown],
                )
            )
    if report["conflicts"]:
        out.print(
            records_table(
                f"conflicts ({len(report['conflicts'])})",
                report["conflicts"][:shown],
                ["inference_id", "entries", "batch_labels", "stored_label", "label_in_force"],
            )
        )


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    spec: SpecOption = None,
    accuracy: Annotated[
        float | None,
        typer.Option(help="Share of labels agreeing with the prediction (labels.accuracy)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Simulator seed (labels.seed).")] = None,
    feature_drift_impact: Annotated[
        float | None, typer.Option(help="Accuracy lost to feature drift, 0-1.")
    ] = None,
    model_drift_mag: Annotated[
        float | None, typer.Option(help="Accuracy lost to model drift, 0-1.")
    ] = None,
    drift_from: Annotated[
        str | None,
        typer.Option(help="Drift applies to predictions from this ISO time on (default: all)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Simulate at most this many predictions.")
    ] = None,
    now: NowOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report, write nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Seed 000's simulator: labels for unlabelled predictions, written once confirmed.

    Fraud is confirmed 1-7 days, legitimate 1-30 days after the request: events confirmed after
    --now are held back and written by a later run.
    """
    from fraudops.labels.simulate import simulate_labels
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        report = simulate_labels(
            runtime.lake(),
            accuracy=accuracy,
            seed=seed,
            now=_time(now, "--now"),
            feature_drift_impact=feature_drift_impact,
            model_drift_mag=model_drift_mag,
            drift_from=_time(drift_from, "--drift-from"),
            limit=limit,
            dry_run=dry_run,
            listeners=runtime.commits,
        ).to_dict()

    def render() -> None:
        rows = {
            k: report[k]
            for k in (
                "predictions",
                "already_labelled",
                "simulated",
                "written",
                "pending",
                "next_confirmation",
                "accuracy",
                "effective_accuracy",
                "agreement",
            )
        }
        rows.update({f"labels {k}": v for k, v in report["labels"].items()})
        rows.update({f"source {k}": v for k, v in report["sources"].items()})
        title = f"Simulated labels for {report['spec']} as of {report['now']}"
        out.print(kv_table(title + (" (dry run)" if dry_run else ""), rows))

    emit(report, as_json, render)


@app.command("coverage")
def coverage(
    ctx: typer.Context,
    spec: SpecOption = None,
    now: NowOption = None,
    since: Annotated[
        str | None, typer.Option(help="Only predictions requested from this ISO time on.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Predictions with and without labels, coverage % and mean days to confirmation, per day."""
    from fraudops.labels.coverage import label_coverage
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        report = label_coverage(
            runtime.lake(), _time(now, "--now"), since=_time(since, "--since")
        ).to_dict()

    def render() -> None:
        if not report["days"]:
            err.print("No predictions in the lake for this window.")
            return
        out.print(
            records_table(
                f"Label coverage of {report['spec']} as of {report['as_of']}",
                report["days"],
            )
        )
        out.print(
            f"total: {report['labelled']}/{report['predictions']} labelled "
            f"({report['coverage_pct']}%), mean days to confirmation "
            f"{report['mean_days_to_confirmation']}"
        )

    emit(report, as_json, render)
