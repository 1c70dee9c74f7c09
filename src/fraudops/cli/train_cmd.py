"""`fraudops train`, `fraudops models`, `fraudops pipeline`: training and the registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, get_args

import typer

from fraudops.cli._common import (
    ByOption,
    EngineOption,
    JsonOption,
    RichReporter,
    SpecOption,
    emit,
    kv_table,
    os_user,
    out,
    records_table,
    settings_from,
)
from fraudops.config import TrainerName

if TYPE_CHECKING:
    from fraudops.training.result import TrainingResult

models_app = typer.Typer(
    help="Registered model versions and the `champion` alias.", no_args_is_help=True
)
pipeline_app = typer.Typer(help="Training pipeline executions.", no_args_is_help=True)

ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why (required): recorded in model_events.")
]

TRAINER_NAMES: tuple[str, ...] = get_args(TrainerName)
DECISION_STYLE = {
    "promoted": "bold green",
    "promoted_below_floor": "bold magenta",
    "not_promoted": "bold yellow",
    "rejected": "bold red",
}


TrainerOption = Annotated[
    str | None,
    typer.Option(
        help="xgboost or logreg (default: training.trainer). logreg (logistic regression + "
        "SMOTE) runs on the local engine only: refused with --engine dask."
    ),
]


def check_trainer(trainer: str | None) -> None:
    if trainer is not None and trainer not in TRAINER_NAMES:
        raise typer.BadParameter(
            f"must be one of {', '.join(TRAINER_NAMES)}", param_hint="--trainer"
        )


def train(
    ctx: typer.Context,
    trainer: TrainerOption = None,
    spec: SpecOption = None,
    engine: EngineOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train on the lake's transactions: time-ordered split, train, evaluate, gate, register.

    --engine dask trains XGBoost on a Dask cluster (xgboost.dask), the lake read partition by
    partition; logistic regression + SMOTE stays on the local engine (refused on dask).

    Exit codes: 0 promoted to champion; 2 a trainer the engine cannot run; 3 gate thresholds
    failed (not registered); 4 registered but trails the champion (not promoted).
    """
    # The pipeline pulls in the lake, MLflow and the trainers: seconds a `--help` should not pay.
    from fraudops.runtime import Runtime
    from fraudops.training.pipeline import run_training

    check_trainer(trainer)
    with (
        Runtime(settings_from(ctx), spec, engine=engine) as runtime,
        RichReporter() as progress,
    ):
        result = run_training(
            runtime.training_context(), trainer=trainer, progress=progress, raise_on_gate=False
        )
    emit(result.to_dict(), as_json, lambda: render_training(result))
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def render_training(result: TrainingResult) -> None:
    metrics = result.metrics.to_dict()
    keys = [
        "roc_auc",
        "pr_auc",
        "precision",
        "recall",
        "f1",
        "threshold",
        "expected_cost",
        "tp",
        "fp",
        "tn",
        "fn",
        "n",
        "positives",
    ]
    out.print(
        kv_table(
            f"Holdout metrics ({result.trainer}, spec {result.spec})",
            {k: metrics[k] for k in keys if k in metrics},
        )
    )
    checks = [c.to_dict() for c in result.gate.checks]
    if checks:
        out.print(records_table("Gate", checks))
    style = DECISION_STYLE.get(result.decision, "bold")
    out.print(f"Decision: [{style}]{result.decision}[/] — {result.reason}")
    if result.version:
        out.print(f"Model {result.model_name} version {result.version}, MLflow run {result.run_id}")


@models_app.command("list")
def list_models(ctx: typer.Context, spec: SpecOption = None, as_json: JsonOption = False) -> None:
    """List registered versions with their aliases and holdout metrics."""
    from fraudops import registry
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        versions = registry.list_versions(runtime.mlflow, runtime.settings, runtime.spec_name)
    emit(versions, as_json, lambda: out.print(records_table("Model versions", versions)))


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version number or alias (e.g. champion).")],
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one version: metrics, threshold, gate result, run and artifacts."""
    from fraudops import registry
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        info = registry.show_version(runtime.mlflow, runtime.settings, version, runtime.spec_name)
    emit(info, as_json, lambda: out.print(kv_table(f"Version {version}", _flat(info))))


@models_app.command("promote")
def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version (3, v3) or alias to make champion.")],
    reason: ReasonOption,
    by: ByOption = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point `champion` at VERSION by hand (no gate), recorded in model_events with who and why.

    Refused, changing nothing, for an unknown VERSION or the current champion."""
    from fraudops import governance
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        event = governance.promote(
            runtime, version, actor=os_user() if by is None else by, reason=reason
        )
    shown = event.to_dict()
    emit(shown, as_json, lambda: out.print(kv_table("Promoted", _flat(shown))))


@models_app.command("rollback")
def rollback(
    ctx: typer.Context,
    reason: ReasonOption,
    by: ByOption = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Re-point `champion` to the previous champion by model_events, recorded with who and why.

    Refused, changing nothing, when model_events records no earlier champion."""
    from fraudops import governance
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        event = governance.rollback(runtime, actor=os_user() if by is None else by, reason=reason)
    shown = event.to_dict()
    emit(shown, as_json, lambda: out.print(kv_table("Rolled back", _flat(shown))))


@pipeline_app.command("runs")
def runs(
    ctx: typer.Context,
    spec: SpecOption = None,
    limit: Annotated[int, typer.Option(help="Most recent executions to list.", min=1)] = 20,
    as_json: JsonOption = False,
) -> None:
    """List training pipeline executions: status, start, duration, metrics, decision."""
    from fraudops import registry
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx)) as runtime:
        rows = registry.pipeline_runs(runtime.mlflow, runtime.settings, spec, limit=limit)
    emit(rows, as_json, lambda: out.print(records_table("Pipeline runs", rows)))


def _flat(info: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        else:
            flat[name] = value
    return flat
