"""Running the dashboard: its settings, the exposure rule, uvicorn. Never inside ``serve``: a
process of its own, so a page load never takes a core from the predict path."""

from __future__ import annotations

from pathlib import Path

from fraudops.config import Settings
from fraudops.dashboard.auth import check_exposure
from fraudops.errors import ConfigError


def dashboard_settings(
    settings: Settings, *, home: Path | None = None, simulation: str | None = None
) -> Settings:
    """The settings of the home to show: ``home``, or a simulation's own home under it."""
    if home is not None:
        settings = settings.model_copy(update={"home": home.expanduser().resolve()})
    if simulation is None:
        return settings
    from fraudops.simulation.run import scenario_of, simulation_settings

    name, _ = scenario_of(settings, simulation)
    sim = simulation_settings(settings, name)
    if not (sim.home_dir / "lake").is_dir():
        raise ConfigError(
            f"no simulation {name!r} under {settings.home_dir}: {sim.home_dir} has no lake "
            f"(run `fraudops simulate --scenario {name}` first)"
        )
    return sim


def run_dashboard(
    settings: Settings,
    *,
    spec_name: str | None = None,
    host: str | None = None,
    port: int | None = None,
    log_level: str = "warning",
) -> None:
    import uvicorn

    from fraudops.dashboard.app import create_app
    from fraudops.runtime import Runtime

    host = host or settings.dashboard.host
    port = port or settings.dashboard.port
    check_exposure(settings, host)
    with Runtime(settings, spec_name) as runtime:
        uvicorn.run(
            create_app(runtime), host=host, port=port, log_level=log_level, access_log=False
        )
