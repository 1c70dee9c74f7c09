"""`fraudops data`: synthetic data sets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from fraudops.cli._common import JsonOption, RichReporter, emit, kv_table, out, settings_from

if TYPE_CHECKING:
    from fraudops.data.raw import RawConfig

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
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Write raw card transactions (id, time, customer, terminal, amount, label) for "
            "the built-in spec `cards`, which derives its features; --out is then a file.",
        ),
    ] = False,
    customers: Annotated[
        int | None, typer.Option(help="--raw: customers (default 5000).", min=1)
    ] = None,
    terminals: Annotated[
        int | None, typer.Option(help="--raw: terminals (default 10000).", min=1)
    ] = None,
    days: Annotated[int | None, typer.Option(help="--raw: days (default 183).", min=1)] = None,
    start: Annotated[
        str | None, typer.Option(help="--raw: first day, UTC (default 2018-04-01).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the seed's synthetic transactions (transactions30 schema), drifted sets and their
    ground truth; with --raw, raw card transactions for the spec `cards` instead (customers and
    terminals with their habits, compromised terminals and cards, late labels).
    Deterministic for a seed."""
    from fraudops.data.files import write_datasets

    if file_format not in ("parquet", "csv"):
        raise typer.BadParameter("must be parquet or csv", param_hint="--format")
    fmt_: Literal["parquet", "csv"] = "csv" if file_format == "csv" else "parquet"
    settings = settings_from(ctx)
    sizes = {"--customers": customers, "--terminals": terminals, "--days": days, "--start": start}
    if raw:
        for name, value in (("--rows", rows), ("--pattern", patterns)):
            if value is not None:
                raise typer.BadParameter(
                    "applies to the synthetic sets, not --raw", param_hint=name
                )
        from fraudops.data.raw import RawConfig

        default = RawConfig()
        config = RawConfig(
            customers=customers or default.customers,
            terminals=terminals or default.terminals,
            days=days or default.days,
            start=start or default.start,
            seed=settings.data.seed if seed is None else seed,
        )
        _generate_raw(config, out_dir or settings.data_dir / f"cards.{fmt_}", as_json)
        return
    given = [name for name, value in sizes.items() if value is not None]
    if given:
        raise typer.BadParameter("sizes a raw data set: add --raw", param_hint=given[0])
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


def _generate_raw(config: RawConfig, target: Path, as_json: bool) -> None:
    from fraudops.data.raw import generate_raw, write_raw

    with RichReporter() as progress:
        dataset = generate_raw(config, progress)
        with progress.step("Writing"):
            path = write_raw(dataset, target)
    summary = {"path": str(path), **dataset.summary()}
    hint = (
        f"Load it: fraudops lake init --spec {summary['spec']} && "
        f"fraudops lake load {path} --spec {summary['spec']}"
    )

    def render() -> None:
        out.print(kv_table("Generated raw transactions", _flat(summary)))
        out.print(hint, highlight=False, soft_wrap=True)

    emit(summary, as_json, render)


def _flat(summary: dict[str, object]) -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, val in value.items():
                flat[f"{key}.{sub}"] = val
        else:
            flat[key] = value
    return flat
