"""Shared CLI plumbing: consoles, the Rich step reporter, JSON output, error handling."""

from __future__ import annotations

import getpass
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from fraudops.config import EngineName, Settings, load_settings
from fraudops.errors import FraudopsError
from fraudops.progress import LineReporter, Reporter

# Progress and messages go to stderr so that `--json` output on stdout stays machine-readable.
out = Console()
err = Console(stderr=True)

SpecOption = Annotated[
    str | None, typer.Option("--spec", help="Feature spec to use (default: the `spec` setting).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
EngineOption = Annotated[
    EngineName | None,
    typer.Option(
        "--engine",
        help="Where the job runs: local (this process) or dask (a Dask cluster: "
        "compute.scheduler_address, else a LocalCluster of compute.workers). "
        "Default: the compute.engine setting.",
    ),
]
ByOption = Annotated[
    str | None,
    typer.Option("--by", help="Who is acting, as recorded (default: your OS user name)."),
]


def os_user() -> str:
    """The OS user name, the default of ``--by``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no USER/LOGNAME and no passwd entry (some containers)
        raise typer.BadParameter("cannot tell your user name: pass it", param_hint="--by") from None


class FraudopsGroup(TyperGroup):
    """Turns our own errors into one red line and their exit code instead of a traceback."""

    # typer.Context narrows the (vendored) click Context the base class declares.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except FraudopsError as exc:
            # Messages quote data (an alert's note, a subject "[fraudops] ..."): not markup.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None


def settings_from(ctx: typer.Context) -> Settings:
    """The settings for this invocation, built once from --config (root option) and the env."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        obj["settings"] = load_settings(obj.get("config"))
    settings: Settings = obj["settings"]
    return settings


def config_path(ctx: typer.Context) -> Path | None:
    value = ctx.ensure_object(dict).get("config")
    return Path(value) if value else None


class RichReporter(Reporter):
    """Draws each step as a spinner (or a bar when it knows its total) with its elapsed time; when
    the console is not a terminal (a pipe, a file, a CI log), plain lines instead, with a
    heartbeat while a step runs (``fraudops.progress.LineReporter``)."""

    def __init__(self, console: Console = err) -> None:
        super().__init__()
        self._lines = None if console.is_terminal else LineReporter(console.file)
        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.percentage:>3.0f}%", justify="right"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )

    def __enter__(self) -> RichReporter:
        if self._lines is not None:
            self._lines.__enter__()
        else:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lines is not None:
            self._lines.__exit__(*exc)
        else:
            self._progress.stop()

    def _start(self, description: str, total: float | None) -> Any:
        if self._lines is not None:
            return self._lines._start(description, total)
        return self._progress.add_task(description, total=total)

    def _advance(self, task: Any, amount: float) -> None:
        if self._lines is not None:
            self._lines._advance(task, amount)
        else:
            self._progress.advance(task, amount)

    def _set_total(self, task: Any, total: float) -> None:
        if self._lines is not None:
            self._lines._set_total(task, total)
        else:
            self._progress.update(task, total=total)

    def _finish(self, task: Any, description: str) -> None:
        if self._lines is not None:
            self._lines._finish(task, description)
            return
        total = self._progress.tasks[task].total if task is not None else None
        self._progress.update(task, total=total or 1, completed=total or 1)


def installed(script: str) -> str:
    """How to run ``script`` (``fraudops``, ``mlflow``) as printed for a user to paste: the
    console script beside this interpreter (``.venv/bin/fraudops``, relative to the current
    folder when under it), since a fresh shell has no activated venv; the bare name when the
    script is not there."""
    path = Path(sys.executable).parent / script
    if not path.exists():
        return script
    return shown_path(path)


def shown_path(path: Path | str) -> str:
    """``path`` relative to the current folder when under it, else absolute."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        out.print_json(json.dumps(data, default=_json_default))
    else:
        render()


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if value is None:
        return "–"
    return str(value)


def kv_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(Text(key), Text(fmt(value)))
    return table


def records_table(
    title: str, records: list[dict[str, Any]], columns: list[str] | None = None
) -> Table:
    columns = columns or (list(records[0]) if records else [])
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for rec in records:
        # Text, not str: data such as "[fraudops] alert" must not be read as Rich markup.
        table.add_row(*(Text(fmt(rec.get(c))) for c in columns))
    return table
