"""`fraudops alerts`: check the alert channels, list the alerts sent, acknowledge one."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from fraudops.cli._common import (
    ByOption,
    JsonOption,
    SpecOption,
    emit,
    err,
    os_user,
    out,
    records_table,
    settings_from,
)

app = typer.Typer(
    help="Drift and degradation alerts: test the channels, list, acknowledge.", no_args_is_help=True
)


@app.command("test")
def test(ctx: typer.Context, spec: SpecOption = None, as_json: JsonOption = False) -> None:
    """Send a sample alert through every configured channel (no cooldown); exit 1 if one fails."""
    # The alerting package and the lake cost seconds of imports: not for every command.
    from fraudops.alerting import send_alert
    from fraudops.alerting.sample import sample_summary
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        summary = sample_summary(runtime.model_name)
        outcome = send_alert(
            runtime.settings,
            runtime.lake(),
            summary,
            channels=runtime.alert_channels,
            test=True,
        )

    def render() -> None:
        for d in outcome.deliveries:
            if d.delivered:
                out.print(f"[green]✓[/] {d.channel}: delivered ({d.attempts} attempt(s))")
            else:
                out.print(f"[red]✗[/] {d.channel}: {d.error} ({d.attempts} attempt(s))")
        if not outcome.deliveries:
            out.print("no alert channel configured (alerts.channels)")
        if outcome.record_error:
            err.print(f"[yellow]not recorded in the lake:[/] {outcome.record_error}")

    emit(outcome.to_dict(), as_json, render)
    if outcome.status != "sent":
        raise typer.Exit(1)


@app.command("list")
def list_(
    ctx: typer.Context,
    spec: SpecOption = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Most rows shown.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The latest alerts, one row per channel: delivery result, who acknowledged it and when.

    `fraudops alerts ack ALERT_ID` acknowledges one."""
    from fraudops.alerting import list_alerts  # the lake's imports: seconds
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        rows = list_alerts(runtime.lake(), limit)

    def render() -> None:
        # records_table shows the values verbatim (subjects start with "[fraudops]").
        shown = [
            {
                **row,
                "created_at": f"{row['created_at']:%Y-%m-%d %H:%M:%S}",
                "acknowledged": _acknowledged(row),
            }
            for row in rows
        ]
        columns = ["created_at", "alert_id", "channel", "severity", "delivered", "attempts"]
        columns += ["subject", "error", "acknowledged"]
        out.print(records_table("alerts", shown, columns))

    emit(rows, as_json, render)


def _acknowledged(row: dict[str, Any]) -> str | None:
    if row["acknowledged_at"] is None:
        return None
    when = f"{row['acknowledged_at']:%Y-%m-%d %H:%M}"
    return f"{row['acknowledged_by']} at {when}: {row['ack_note']}"


@app.command("ack")
def ack(
    ctx: typer.Context,
    alert_id: Annotated[str, typer.Argument(help="The alert's id (`fraudops alerts list`).")],
    note: Annotated[
        str, typer.Option("--note", help="What you make of it (required): recorded on the alert.")
    ],
    by: ByOption = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge an alert: who, when and a note, recorded on every row of it in `alerts`.

    Refused, writing nothing, for an unknown or an already acknowledged alert."""
    from fraudops import governance
    from fraudops.runtime import Runtime

    with Runtime(settings_from(ctx), spec) as runtime:
        done = governance.acknowledge_alert(
            runtime, alert_id, actor=os_user() if by is None else by, note=note
        )
    shown = done.to_dict()
    emit(
        shown,
        as_json,
        lambda: out.print(
            f"Alert {done.alert_id} acknowledged by {escape(done.acknowledged_by)} at "
            f"{done.acknowledged_at:%Y-%m-%d %H:%M:%S} UTC ({len(done.channels)} row(s))."
        ),
    )
