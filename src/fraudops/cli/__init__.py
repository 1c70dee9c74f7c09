"""The `fraudops` command line: thin commands over the service layer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fraudops import __version__
from fraudops.cli import (
    alerts_cmd,
    config_cmd,
    consumer_cmd,
    dashboard_cmd,
    data_cmd,
    demo_cmd,
    labels_cmd,
    lake_cmd,
    log_cmd,
    monitor_cmd,
    scheduler_cmd,
    score_cmd,
    serve_cmd,
    simulate_cmd,
    traffic_cmd,
    train_cmd,
)
from fraudops.cli._common import FraudopsGroup

app = typer.Typer(
    name="fraudops",
    cls=FraudopsGroup,
    help="Self-hosted MLOps for fraud-detection models: lake, training with a quality gate, "
    "registry, serving, drift monitoring and retraining.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fraudops {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML config file (default: ./fraudops.yaml if present, or $FRAUDOPS_CONFIG).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Settings: package defaults < fraudops.yaml (or --config) < FRAUDOPS_<SECTION>__<KEY> env."""
    ctx.ensure_object(dict)["config"] = str(config) if config else None


app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(lake_cmd.app, name="lake")
app.add_typer(labels_cmd.app, name="labels")
app.command("train")(train_cmd.train)
app.add_typer(train_cmd.models_app, name="models")
app.add_typer(train_cmd.pipeline_app, name="pipeline")
app.command("serve")(serve_cmd.serve)
app.command("log-writer")(log_cmd.log_writer)
app.command("log-consumer")(consumer_cmd.log_consumer)
app.command("score")(score_cmd.score)
app.command("traffic")(traffic_cmd.traffic)
app.add_typer(monitor_cmd.app, name="monitor")
app.command("scheduler")(scheduler_cmd.scheduler)
app.command("retrain")(simulate_cmd.retrain)
app.command("simulate")(simulate_cmd.simulate)
app.command("demo")(demo_cmd.demo)
app.add_typer(alerts_cmd.app, name="alerts")
app.command("dashboard")(dashboard_cmd.dashboard)


def main() -> None:
    # MLflow and git-python chatter is noise on a CLI.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MPLBACKEND", "Agg")
    app()
