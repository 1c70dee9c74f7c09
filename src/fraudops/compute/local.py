"""The local engine: a job in this process, over pandas and NumPy (fraudops' default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraudops.compute.base import Engine

if TYPE_CHECKING:
    from fraudops.monitoring.window import WindowChecks, WindowRequest
    from fraudops.progress import Reporter
    from fraudops.runtime import Runtime


class LocalEngine(Engine):
    name = "local"

    def close(self) -> None:
        pass

    # ---- monitoring: still here until monitoring's sequence owns its primitives (issue 18)
    def check_window(
        self, runtime: Runtime, request: WindowRequest, progress: Reporter
    ) -> WindowChecks:
        from fraudops.monitoring.window import check_window_local

        return check_window_local(runtime.lake(), self.settings, runtime.spec, request, progress)
