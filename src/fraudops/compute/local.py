"""The local engine: a job in this process, over pandas and NumPy (fraudops' default)."""

from __future__ import annotations

from fraudops.compute.base import Engine


class LocalEngine(Engine):
    name = "local"

    def close(self) -> None:
        pass
