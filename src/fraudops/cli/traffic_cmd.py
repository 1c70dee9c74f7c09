"""`fraudops traffic`: synthetic requests against a running server, with a latency summary."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fraudops.cli._common import (
    JsonOption,
    RichReporter,
    SpecOption,
    emit,
    kv_table,
    out,
    settings_from,
)


def traffic(
    ctx: typer.Context,
    n: Annotated[int, typer.Option("--n", help="Transactions to send, one per request.", min=1)],
    drifted: Annotated[
        bool, typer.Option("--drifted", help="Apply the configured drift (data.default_drift).")
    ] = False,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate", help="Target requests/s, open loop (default: as fast as --concurrency)."
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Server address (default: http://<serving.host>:<port>)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Most requests in flight.", min=1)
    ] = 16,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Bearer token (default: the first of serving.tokens)."),
    ] = None,
    spec: SpecOption = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", help="Generator seed (default: random; the summary shows it)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send N generated transactions to a running server's /v1/predict and print requests/s,
    latency percentiles, errors by status, the share predicted fraud and the model versions seen.

    Exit codes: 0 every request succeeded; 1 some failed (the summary counts them by status) or
    the server could not be reached.
    """
    from fraudops.traffic.client import run_traffic

    if rate is not None and rate <= 0:
        raise typer.BadParameter("must be positive", param_hint="--rate")
    settings = settings_from(ctx)
    with RichReporter() as progress:
        report = run_traffic(
            settings,
            n=n,
            drifted=drifted,
            rate=rate,
            url=url,
            concurrency=concurrency,
            token=token,
            spec_name=spec,
            seed=seed,
            progress=progress,
        )
    summary = report.to_dict()
    emit(summary, as_json, lambda: render(summary))
    if report.ok < report.sent:
        raise typer.Exit(1)


def render(summary: dict[str, Any]) -> None:
    latency = summary["latency_ms"]
    share = summary["fraud_share"]
    rows: dict[str, Any] = {
        "sent": summary["sent"],
        "ok": summary["ok"],
        "errors": ", ".join(f"{k}: {v}" for k, v in summary["errors"].items()) or "none",
        "requests/s": f"{summary['requests_per_s']:,.1f}"
        + (f" (target {summary['target_rate']:g})" if summary["target_rate"] else ""),
        "latency ms p50 / p95 / p99 / max": " / ".join(
            "–" if latency[k] is None else f"{latency[k]:.1f}" for k in ("p50", "p95", "p99", "max")
        ),
        "predicted fraud": "–" if share is None else f"{summary['predicted_fraud']} ({share:.2%})",
        "model versions": ", ".join(f"v{k}: {v}" for k, v in summary["model_versions"].items())
        or "–",
        "seed": summary["seed"],
    }
    out.print(
        kv_table(f"Traffic to {summary['url']}{' (drifted)' if summary['drifted'] else ''}", rows)
    )
    for kind, example in summary["error_examples"].items():
        out.print(f"[yellow]{kind}[/]: {example}", highlight=False, soft_wrap=True)
