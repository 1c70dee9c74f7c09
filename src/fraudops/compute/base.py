"""The engine interface: a compute engine's name, its settings and its lifecycle.

A job's sequence (training/pipeline.py, batch/score.py) picks the primitives of the engine it
is handed by ``Engine.name``; an engine never sees the ``Runtime`` that owns it. The factory is
``fraudops.compute.factory.open_engine``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

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

    @abstractmethod
    def close(self) -> None: ...

    # ---- monitoring: still here until monitoring's sequence owns its primitives (issue 18)
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
