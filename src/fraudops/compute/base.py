"""The engine interface: a compute engine's name, its settings and its lifecycle.

A job's sequence (training/pipeline.py, batch/score.py) picks the primitives of the engine it
is handed by ``Engine.name``; an engine never sees the ``Runtime`` that owns it. The factory is
``fraudops.compute.factory.open_engine``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar

from fraudops.config import EngineName, Settings


class Engine(ABC):
    """One compute engine, open for the life of a command, a server or a scheduler."""

    name: ClassVar[EngineName]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
