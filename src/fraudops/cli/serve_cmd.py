"""`fraudops serve`: the real-time scoring endpoint."""

from __future__ import annotations

from typing import Annotated

import typer

from fraudops.cli._common import SpecOption, err, settings_from


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address (default: serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serving.port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: serving.workers).", min=1)
    ] = None,
    spec: SpecOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the registry's champion on POST /v1/predict, logging every prediction to the lake.

    Reloads the model when `champion` moves. Docs at /docs, metrics at /metrics. Bearer tokens
    come from serving.tokens; the server refuses a non-loopback address without one.
    """
    from fraudops.runtime import Runtime
    from fraudops.serving.server import check_exposure, run_server

    settings = settings_from(ctx)
    cfg = settings.serving
    bind = host or cfg.host
    check_exposure(settings, bind)
    err.print(
        f"fraudops serving spec [bold]{settings.feature_spec(spec).name}[/] on "
        f"http://{bind}:{port or cfg.port} (log: {cfg.log_backend}; docs at /docs)",
        highlight=False,
    )
    with Runtime(settings, spec) as runtime:
        run_server(runtime, host=host, port=port, workers=workers, log_level=log_level)
