"""The engine interface and its factory.

An engine runs the data-parallel part of a job; everything around it (the MLflow run, the gate,
the registry, the records in the lake, alerts) is the same code for both and lives in
``fraudops.orchestration``. Each method returns the typed result the local path returns.
The factory is ``fraudops.compute.factory.open_engine``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar

from fraudops.config import EngineName, Settings

if TYPE_CHECKING:
    from fraudops.monitoring.window import WindowChecks, WindowRequest
    from fraudops.progress import Reporter
    from fraudops.runtime import Runtime


class Engine(ABC):
    """One compute engine, open for the life of a command, a server or a scheduler."""

    name: ClassVar[EngineName]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def describe(self) -> dict[str, Any]:
        """What it runs on, for ``--json`` and the progress line."""
        return {"engine": self.name}

    @abstractmethod
    def close(self) -> None: ...

    # ---- monitoring

    @abstractmethod
    def check_window(
        self, runtime: Runtime, request: WindowRequest, progress: Reporter
    ) -> WindowChecks:
        """A monitoring run's window read, data drift and performance
        (``fraudops.monitoring.window``)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
