"""`fraudops dashboard`: the governance web pages over the lake and the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fraudops.cli._common import SpecOption, err, settings_from


def dashboard(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: dashboard.host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: dashboard.port, 8090).", min=1, max=65535)
    ] = None,
    home: Annotated[
        Path | None, typer.Option("--home", help="The fraudops home to show (default: `home`).")
    ] = None,
    spec: SpecOption = None,
    simulation: Annotated[
        str | None,
        typer.Option(
            "--simulation",
            help="Show a simulation's home (<home>/simulations/<SCENARIO>), e.g. drift.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Drift, features, models, alerts, runs, inference, labels and lookup pages, live.

    Every asset is served from installed packages (works air-gapped). On loopback with no
    secret it runs open; off loopback it needs dashboard.secret or serving.tokens, and a browser
    signs in once at /login. Promote, roll back and acknowledge need a reason and are recorded
    with who did them.
    """
    from fraudops.dashboard.auth import check_exposure
    from fraudops.dashboard.server import dashboard_settings, run_dashboard

    settings = dashboard_settings(settings_from(ctx), home=home, simulation=simulation)
    bind = host or settings.dashboard.host
    check_exposure(settings, bind)
    spec_name = settings.feature_spec(spec).name
    err.print(
        f"fraudops dashboard of {settings.home_dir} (spec [bold]{spec_name}[/]) on "
        f"http://{bind}:{port or settings.dashboard.port}/",
        highlight=False,
        soft_wrap=True,
    )
    run_dashboard(settings, spec_name=spec_name, host=host, port=port, log_level=log_level)
