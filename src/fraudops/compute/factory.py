"""Builds the engine the settings name."""

from __future__ import annotations

from fraudops.compute.base import Engine
from fraudops.config import EngineName, Settings
from fraudops.errors import ConfigError


def open_engine(settings: Settings, name: EngineName | None = None) -> Engine:
    """The engine ``name`` (default ``compute.engine``); a Dask engine connects or starts its
    cluster on first use, not here."""
    chosen = name or settings.compute.engine
    if chosen == "local":
        from fraudops.compute.local import LocalEngine

        return LocalEngine(settings)
    if chosen == "dask":
        from fraudops.compute.dask_engine import DaskEngine

        return DaskEngine(settings)
    raise ConfigError(f"unknown compute engine {chosen!r}: use local or dask")
