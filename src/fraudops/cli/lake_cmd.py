"""`fraudops lake`: the Iceberg tables."""

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
    records_table,
    settings_from,
)
from fraudops.config import without_password

app = typer.Typer(help="Create, load and query the lake's Iceberg tables.", no_args_is_help=True)


@app.command("init")
def init(ctx: typer.Context, spec: SpecOption = None, as_json: JsonOption = False) -> None:
    """Create the spec's namespace and all its tables (idempotent).

    On a home made by an older release it also adds the optional columns this release writes
    to the existing tables (never dropping or recreating anything), and says which. With an
    s3:// warehouse (`lake.warehouse`) the bucket must exist already: it is never created."""
    from fraudops.lake.schemas import TABLES
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        lake = runtime.lake()
        done = lake.init_tables()
    result = {
        "spec": lake.spec.name,
        "catalog": without_password(lake.settings.catalog_uri),
        **done.to_dict(),
        "tables": list(TABLES),
    }

    def render() -> None:
        created = done.created
        out.print(
            f"Lake ready for spec [bold]{lake.spec.name}[/]: {len(TABLES)} tables, "
            f"{len(created)} created ({', '.join(created) or 'none new'})."
        )
        for table, columns in done.columns_added.items():
            out.print(f"Added to {table}: {', '.join(columns)}.")
        if done.properties_set:
            out.print(f"Maintenance properties set on: {', '.join(done.properties_set)}.")

    emit(result, as_json, render)


@app.command("load")
def load(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="CSV or Parquet file with the spec's columns.")],
    spec: SpecOption = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the table's rows instead of appending.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate a file against the feature spec and load it into `transactions`, all or nothing.

    The tables must exist: `fraudops lake init` creates them."""
    from fraudops.lake import load_file
    from fraudops.lake.maintenance_auto import AutoMaintainer
    from fraudops.lake.schemas import TRANSACTIONS
    from fraudops.runtime import Runtime

    settings = settings_from(ctx)
    with Runtime(settings, spec) as runtime, RichReporter() as progress:
        lake = runtime.lake()
        report = load_file(lake, path, mode="replace" if replace else "append", progress=progress)
        AutoMaintainer(settings, lake.spec.name, [TRANSACTIONS], "transactions").maybe_run(lake)
    result = report.to_dict()
    emit(
        result,
        as_json,
        lambda: out.print(kv_table(f"Loaded into {lake.spec.name}.transactions", result)),
    )


@app.command("query")
def query(
    ctx: typer.Context,
    sql: Annotated[
        str,
        typer.Argument(
            help="DuckDB SQL; tables by their lake names, e.g. 'SELECT count(*) FROM transactions'."
        ),
    ],
    spec: SpecOption = None,
    limit: Annotated[
        int, typer.Option(help="Rows to print (the query itself is not limited).")
    ] = 50,
    as_json: JsonOption = False,
) -> None:
    """Run DuckDB SQL over the lake's tables."""
    from fraudops.lake.query import run_query
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        table = run_query(runtime.lake(), sql)
    records = table.slice(0, limit).to_pylist()
    emit(
        records,
        as_json,
        lambda: out.print(
            records_table(
                f"{table.num_rows} row(s)" + (f", first {limit}" if table.num_rows > limit else ""),
                records,
                table.column_names,
            )
        ),
    )


@app.command("aggregates")
def aggregates(
    ctx: typer.Context,
    spec: SpecOption = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Recompute them from every prediction and label (one overwrite commit each) "
            "instead of folding in what landed since the last refresh.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring the dashboard's aggregates (prediction_stats, label_stats) up to date.

    The log writers and label ingestion refresh them after each commit; this catches up after
    a failed refresh, and --rebuild recomputes them when a refresh refuses (predictions
    rewritten or expired). Reports the rows folded in, the watermark and the time taken."""
    from fraudops.aggregates.hooks import refresh_all
    from fraudops.lake.schemas import LABEL_STATS, LABELS, PREDICTION_STATS, PREDICTIONS
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        lake = runtime.lake()
        lake.check([PREDICTIONS, LABELS, PREDICTION_STATS, LABEL_STATS])  # names the missing
        reports = refresh_all(lake, rebuild=rebuild)
    result = {"spec": lake.spec.name, "aggregates": [r.to_dict() for r in reports]}

    def render() -> None:
        for r in reports:
            out.print(
                f"[bold]{r.table}[/]: {r.mode}, {r.rows_folded:,} row(s) folded in "
                f"({r.folded_total:,} in all), {r.rows_written:,} aggregate row(s) written, "
                f"watermark predictions snapshot {r.watermark or '–'}, {r.seconds:.2f} s"
            )

    emit(result, as_json, render)


@app.command("maintain")
def maintain(
    ctx: typer.Context,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="Only this table (repeatable); default: every table."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show what a run would do now (the same plan), change nothing."
        ),
    ] = False,
    scheduled: Annotated[
        bool,
        typer.Option(
            "--scheduled",
            help="What the scheduler's maintenance job runs: the tables no writer maintains "
            "(transactions, monitoring, alerts, model events), and reports older than "
            "maintenance.keep_reports_days.",
        ),
    ] = False,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Maintain the lake's tables now: expire old snapshots, compact small data files, delete
    orphan and old metadata files, set the maintenance table properties.

    The same runs on its own every maintenance.interval_s in the processes that write the
    tables. Reports per table what was removed and rewritten, files and bytes before and after."""
    from fraudops.lake.maintenance import SCHEDULED_TABLES
    from fraudops.lake.maintenance import maintain as run_maintenance
    from fraudops.lake.maintenance_auto import prune_reports
    from fraudops.lake.maintenance_policy import MaintenancePolicy
    from fraudops.lake.schemas import TABLES, check_table_name
    from fraudops.runtime import Runtime

    settings = settings_from(ctx)
    names = [check_table_name(t) for t in table] if table else list(TABLES)
    if scheduled and not table:
        names = list(SCHEDULED_TABLES)
    policy = MaintenancePolicy.from_settings(settings)
    with Runtime(settings, spec) as runtime:
        lake = runtime.lake()
        _ = lake.catalog  # a missing lake is named here, not once per table
        results = run_maintenance(lake, names, policy, dry_run=dry_run)
    pruned = [] if dry_run or not scheduled else prune_reports(settings)
    failed = [r for r in results if r.errors and r.plan is None]
    result = {
        "spec": lake.spec.name,
        "dry_run": dry_run,
        "tables": [r.to_dict() for r in results],
        "reports_removed": [str(p) for p in pruned],
    }

    def render() -> None:
        rows = [
            {
                "table": r.table,
                "snapshots expired": len(r.plan.expire)
                if dry_run and r.plan
                else r.snapshots_expired,
                "data files rewritten": sum(len(g.files) for g in r.plan.compact)
                if dry_run and r.plan
                else r.data_files_rewritten,
                "files removed": len(r.plan.orphans) if dry_run and r.plan else r.files_removed,
                "files": f"{r.files_before:,} -> {r.files_after:,}",
                "MB": f"{r.bytes_before / 1e6:,.1f} -> {r.bytes_after / 1e6:,.1f}",
                "errors": "; ".join(r.errors),
            }
            for r in results
        ]
        title = "Would do (dry run)" if dry_run else "Maintenance"
        out.print(records_table(f"{title}: {lake.spec.name}", rows))
        if pruned:
            out.print(f"{len(pruned)} report folder(s) older than the retention removed.")

    emit(result, as_json, render)
    if failed:
        raise typer.Exit(1)
