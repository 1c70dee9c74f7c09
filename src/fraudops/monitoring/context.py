"""What a monitoring run and a retrain work with: the clients, given, never built here.

The composition root (``fraudops.runtime.Runtime.monitoring_context``) builds them once;
``fraudops.monitoring.run`` and ``fraudops.monitoring.retraining`` take them from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from fraudops.alerting.channels import AlertChannel
from fraudops.compute.base import Engine
from fraudops.config import Settings
from fraudops.lake.catalog import Lake
from fraudops.progress import Reporter
from fraudops.registry.events import Trigger
from fraudops.spec import FeatureSpec
from fraudops.training.result import TrainingResult

if TYPE_CHECKING:
    from mlflow import MlflowClient


class TrainingRunner(Protocol):
    """The training pipeline, as a retrain calls it (bound to its clients by the runtime)."""

    def __call__(
        self,
        *,
        trainer: str | None,
        progress: Reporter | None,
        raise_on_gate: bool,
        trigger: Trigger,
        reason: str,
        monitoring_run_id: str | None,
        retrain_as_of: datetime,
        hold_baseline: bool,
        reasons: Sequence[str],
    ) -> TrainingResult: ...


@dataclass(frozen=True)
class MonitoringContext:
    """The collaborators of a monitoring run, for one feature spec."""

    settings: Settings
    spec: FeatureSpec
    lake: Lake
    mlflow: MlflowClient
    alert_channels: Sequence[AlertChannel]  # the configured ones
    engine: Engine  # its name picks the window backend (monitoring.run.open_window)
    run_training: TrainingRunner  # what a retrain runs
    actor: str = "fraudops"  # who automatic decisions are recorded as (model_events.actor)

    @property
    def model_name(self) -> str:
        return self.settings.registered_model_name(self.spec.name)
