"""The composition root: the one place that builds clients from the settings.

A command, the server's lifespan, the scheduler or a simulation builds one ``Runtime`` and passes
it down; services take the clients they need from it instead of opening their own. Every client is
built on first use (importing MLflow costs ~1.7 s, a command that never asks the registry should
not pay it) and closed once, by ``close()`` or the ``with`` block.

Nothing here creates lake tables: only ``fraudops lake init`` (and the demo, on an empty home) does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from fraudops.compute import Engine, open_engine
from fraudops.config import EngineName, LogBackend, Settings
from fraudops.spec import FeatureSpec

# Clients are imported where they are built: the lake's pyiceberg, the alert channels and the
# inference log cost seconds of imports that `fraudops score` (benchmarked start-up) never needs.
if TYPE_CHECKING:
    from mlflow import MlflowClient

    from fraudops.alerting.channels import AlertChannel
    from fraudops.features.online import OnlineStore
    from fraudops.inference_log.base import Drainer, Producer
    from fraudops.lake import Lake
    from fraudops.lake.commits import CommitListeners
    from fraudops.monitoring.context import MonitoringContext
    from fraudops.training.backend import TrainingContext


class Runtime:
    """Settings plus the clients built from them, for one active feature spec."""

    def __init__(
        self,
        settings: Settings,
        spec_name: str | None = None,
        *,
        actor: str = "fraudops",
        engine: EngineName | None = None,
    ) -> None:
        self.settings = settings
        self.spec: FeatureSpec = settings.feature_spec(spec_name)
        # Who the automatic decisions of this process are recorded as (model_events.actor):
        # registry.events.SYSTEM_ACTOR, or "simulation"; a governance action names its person.
        self.actor = actor
        self._lakes: dict[str, Lake] = {}
        self._engine_name = engine

    @property
    def spec_name(self) -> str:
        return self.spec.name

    def lake(self, spec_name: str | None = None) -> Lake:
        """The lake of ``spec_name`` (default: the runtime's spec), one per spec, reused."""
        name = spec_name or self.spec.name
        if name not in self._lakes:
            self._lakes[name] = open_lake(self.settings, name)
        return self._lakes[name]

    def lake_factory(self, spec_name: str | None = None) -> Callable[[], Lake]:
        """What a thread that needs a lake client of its own calls (a Lake is not shared
        across threads); each call opens a new one, closed by its caller."""
        return partial(open_lake, self.settings, spec_name or self.spec.name)

    @cached_property
    def mlflow(self) -> MlflowClient:
        """The tracking and registry client for ``settings.tracking_uri`` (built on first use:
        importing MLflow costs ~1.7 s)."""
        return mlflow_client(self.settings)

    def mlflow_factory(self) -> Callable[[], MlflowClient]:
        """The runtime's client, built when first asked: ``registry.load_model`` asks only when
        the direct read of a SQLite store does not answer (``fraudops score`` never imports
        MLflow). A process of its own builds one with ``mlflow_client(settings)``."""
        return lambda: self.mlflow

    def online_store(self) -> OnlineStore:
        """A new online store of the spec's derived features (``features.online_store``:
        memory or redis), empty; the caller warms it (features.served.warm_from_lake) and
        closes it. A server process holds one."""
        from fraudops.features.online_factory import open_online_store

        return open_online_store(self.settings, self.spec)

    @cached_property
    def alert_channels(self) -> list[AlertChannel]:
        from fraudops.alerting.channels import build_channels

        return build_channels(self.settings.alerts)

    def log_producer(self) -> Producer:
        """A new, open producer of the configured inference log (``serving.log_backend``) for
        the runtime's spec; the caller closes it (a server process holds one)."""
        from fraudops.inference_log.factory import open_producer

        return open_producer(self.settings, self.spec.name)

    def log_drainer(
        self,
        consumer_name: str | None = None,
        *,
        claim_idle_ms: int | None = None,
        backend: LogBackend | None = None,
    ) -> Drainer | None:
        """A new drainer of the configured inference log into the spec's ``predictions``
        (None for ``log_backend: none``), its commits followed by the ``prediction_stats``
        refresh then the log tables' maintenance when due; the caller closes it."""
        from fraudops.aggregates.hooks import StatsRefresher
        from fraudops.inference_log.factory import open_drainer
        from fraudops.lake.commits import CommitListeners

        listeners = CommitListeners()
        drainer = open_drainer(
            self.settings,
            self.spec.name,
            open_lake=self.lake_factory(),
            consumer_name=consumer_name,
            claim_idle_ms=claim_idle_ms,
            listeners=listeners,
            backend=backend,
        )
        if drainer is not None:
            stats = StatsRefresher(self.lake_factory())  # the dashboard's aggregates
            listeners.subscribe(stats.after_commit, close=stats.close)
            listeners.subscribe(drainer.upkeep.after_commit)  # counted in the writer's status
        return drainer

    @cached_property
    def commits(self) -> CommitListeners:
        """Told of the label ingestions this process commits: ``label_ingests`` and
        ``label_stats`` brought up to date, then the label tables' maintenance when due."""
        from fraudops.aggregates.hooks import on_labels_committed
        from fraudops.lake.commits import CommitListeners
        from fraudops.lake.maintenance_auto import maintain_label_tables

        listeners = CommitListeners()
        listeners.subscribe(on_labels_committed)
        listeners.subscribe(maintain_label_tables)
        return listeners

    @cached_property
    def engine(self) -> Engine:
        """The compute engine (``compute.engine``, or the ``engine`` this runtime was built
        with); a Dask cluster is reached or started on its first job, not here."""
        return open_engine(self.settings, self._engine_name)

    def training_context(self) -> TrainingContext:
        """What a training run takes (training/pipeline.py's ``run_training``): this runtime's
        settings, spec, lake, MLflow client, engine and actor."""
        from fraudops.training.backend import TrainingContext

        return TrainingContext(
            self.settings, self.spec, self.lake(), self.mlflow, self.engine, self.actor
        )

    def monitoring_context(self) -> MonitoringContext:
        """The clients a monitoring run and a retrain take (``fraudops.monitoring``), with the
        training pipeline bound to this runtime's training context for a retrain."""
        from fraudops.monitoring.context import MonitoringContext
        from fraudops.training.pipeline import run_training

        return MonitoringContext(
            settings=self.settings,
            spec=self.spec,
            lake=self.lake(),
            mlflow=self.mlflow,
            alert_channels=self.alert_channels,
            engine=self.engine,
            run_training=partial(run_training, self.training_context()),
            actor=self.actor,
        )

    @property
    def model_name(self) -> str:
        return self.settings.registered_model_name(self.spec.name)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()
            del self.__dict__["engine"]
        for lake in self._lakes.values():
            lake.close()
        self._lakes.clear()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_lake(settings: Settings, spec_name: str | None = None) -> Lake:
    """A new lake client for ``spec_name``: the one place one is opened. ``Runtime.lake`` keeps
    one per spec; a thread or a process of its own gets ``Runtime.lake_factory``."""
    from fraudops.lake import Lake

    return Lake.open(settings, spec_name)


def mlflow_client(settings: Settings) -> MlflowClient:
    """A new MLflow client for ``settings.tracking_uri``: the one place one is built.
    ``Runtime.mlflow`` keeps one; a process of its own gets ``Runtime.mlflow_factory``."""
    from fraudops.registry.client import build_client  # imports MLflow: ~1.7 s

    return build_client(settings)


def served_app_from_env() -> Any:
    """uvicorn's factory in each worker process of ``fraudops serve --workers N``: the app over
    a Runtime of its own, from ``FRAUDOPS_CONFIG`` and ``FRAUDOPS_SERVE_SPEC``."""
    import os

    from fraudops.config import load_settings
    from fraudops.serving.app import create_app
    from fraudops.serving.server import SPEC_ENV

    # Lives as long as the worker process: closed with it.
    return create_app(Runtime(load_settings(), os.environ.get(SPEC_ENV)))
