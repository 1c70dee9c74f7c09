"""`fraudops config`: what the settings are and where each value came from."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from fraudops.cli._common import JsonOption, config_path, emit, fmt, out, settings_from
from fraudops.config import describe_settings

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@app.command("show")
def show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print every effective setting and its source (default, fraudops.yaml, or env var)."""
    settings = settings_from(ctx)
    rows = describe_settings(settings, config_path(ctx))

    def render() -> None:
        table = Table(title=f"fraudops settings (home: {settings.home_dir})", title_justify="left")
        table.add_column("key", style="bold", overflow="fold")
        table.add_column("value", overflow="fold")
        table.add_column("source", style="dim")
        for row in rows:
            table.add_row(Text(row["key"]), Text(fmt(row["value"])), Text(row["source"]))
        out.print(table)

    emit(rows, as_json, render)
