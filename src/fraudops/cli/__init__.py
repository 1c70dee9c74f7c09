"""The `fraudops` command line: thin commands over the service layer."""

from __future__ import annotations

import importlib
import os
from difflib import get_close_matches
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudops import __version__
from fraudops.cli._common import FraudopsGroup

if TYPE_CHECKING:  # typer 0.29 vendors click: its types have no public name
    from typer._click.core import Command, Context

# Each command's module is imported when that command runs (or when --help lists them all):
# `fraudops score` never pays for the server's, the simulation's or the dashboard's imports.
# Name -> (module in fraudops.cli, attribute), in the order --help lists them: the commands,
# then the groups (a Typer app each), as typer orders what was registered.
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train_cmd", "train"),
    "serve": ("serve_cmd", "serve"),
    "log-writer": ("log_cmd", "log_writer"),
    "log-consumer": ("consumer_cmd", "log_consumer"),
    "score": ("score_cmd", "score"),
    "traffic": ("traffic_cmd", "traffic"),
    "scheduler": ("scheduler_cmd", "scheduler"),
    "retrain": ("simulate_cmd", "retrain"),
    "simulate": ("simulate_cmd", "simulate"),
    "demo": ("demo_cmd", "demo"),
    "dashboard": ("dashboard_cmd", "dashboard"),
}
GROUPS: dict[str, tuple[str, str]] = {
    "config": ("config_cmd", "app"),
    "data": ("data_cmd", "app"),
    "lake": ("lake_cmd", "app"),
    "features": ("features_cmd", "app"),
    "labels": ("labels_cmd", "app"),
    "models": ("train_cmd", "models_app"),
    "pipeline": ("train_cmd", "pipeline_app"),
    "monitor": ("monitor_cmd", "app"),
    "alerts": ("alerts_cmd", "app"),
}


class LazyGroup(FraudopsGroup):
    """The root group: builds a command from its module the first time it is asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *GROUPS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and (cmd_name in COMMANDS or cmd_name in GROUPS):
            found = _load(cmd_name)
            self.add_command(found, cmd_name)
        return found

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        # typer suggests from the commands built so far; suggest from all of them, as before.
        names = self.list_commands(ctx)
        typo = args[0] if args else ""
        if typo and not typo.startswith("-") and typo not in names and self.suggest_commands:
            matches = get_close_matches(typo, names)
            if matches:
                suggestions = ", ".join(f"{m!r}" for m in matches)
                ctx.fail(f"No such command {typo!r}. Did you mean {suggestions}?")
        return super().resolve_command(ctx, args)


def _load(name: str) -> Command:
    module, attribute = COMMANDS.get(name) or GROUPS[name]
    target = getattr(importlib.import_module(f"fraudops.cli.{module}"), attribute)
    if name in GROUPS:
        group = typer.main.get_group(target)
        group.name = name
        return group
    single = typer.Typer(add_completion=False)  # the root has the completion options
    single.command(name)(target)
    return typer.main.get_command(single)


app = typer.Typer(
    name="fraudops",
    cls=LazyGroup,
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


def main() -> None:
    # MLflow and git-python chatter is noise on a CLI.
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MPLBACKEND", "Agg")
    app()
