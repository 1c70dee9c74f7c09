"""The registry client a test passes where the product passes ``Runtime.mlflow_factory()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fraudops.config import Settings
from fraudops.runtime import Runtime

if TYPE_CHECKING:
    from mlflow import MlflowClient


def registry_client(settings: Settings) -> Callable[[], MlflowClient]:
    """Built on first use, as the runtime builds it (a direct SQLite read needs none)."""
    return Runtime(settings).mlflow_factory()
