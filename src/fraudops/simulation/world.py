"""The serving process of a simulation, driven in-process through its public seams.

The real ASGI app (its micro-batching service, its durable spool log, its model holder) answers
the simulated traffic over an in-process HTTP transport. Request times come from the simulated
clock (the app's ``clock`` parameter); before a monitoring run the log is rotated and drained
into the lake, and a new champion is picked up by the holder's hot reload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from fraudops.errors import FraudopsError
from fraudops.serving.app import PREDICT_PATH, create_app

if TYPE_CHECKING:
    from fraudops.runtime import Runtime

ERROR_CHARS = 300  # of a failed answer, in the error
_JSON = {"content-type": "application/json"}


class ServingWorld:
    """One serving process on a simulated clock. ``close()`` when done."""

    def __init__(self, runtime: Runtime, start: datetime) -> None:
        self.runtime = runtime  # the simulation's clients: the log's drainer, label listeners
        self.sim, self.spec = runtime.settings, runtime.spec
        self.clock = start  # the simulated now: the request time of what is served
        self.app = create_app(runtime, clock=lambda: self.clock)
        self.state = self.app.state
        self.state.start()
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://simulation"
        )

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()
        self.state.stop()

    def predict(
        self, requests: Sequence[tuple[datetime, list[dict[str, Any]]]]
    ) -> list[list[dict[str, Any]]]:
        """Post each request (its transactions) at its simulated time, in order; the results of
        each (``inference_id``, ``transaction_id``, ...). Raises on any answer but a 200."""
        return self.loop.run_until_complete(self._predict(requests))

    async def _predict(
        self, requests: Sequence[tuple[datetime, list[dict[str, Any]]]]
    ) -> list[list[dict[str, Any]]]:
        answers = []
        for at, transactions in requests:
            self.clock = at
            response = await self.client.post(
                PREDICT_PATH, content=orjson.dumps(transactions), headers=_JSON
            )
            if response.status_code != 200:
                raise FraudopsError(
                    f"simulated traffic: {PREDICT_PATH} answered {response.status_code}: "
                    f"{response.text[:ERROR_CHARS]}"
                )
            answers.append(response.json()["results"])
        return answers

    def flush(self) -> None:
        """Seal the serving process's log and commit everything served so far to the lake."""
        self.state.rotate_log()  # a fresh segment takes the next day's records
        writer = self.runtime.log_drainer()
        if writer is None:
            raise FraudopsError("simulation: serving.log_backend is none, nothing to drain")
        try:
            report = writer.drain()
        finally:
            writer.close()
        if report.commit_failures:  # a simulation must not go on with predictions missing
            raise FraudopsError(f"simulation: the log writer could not commit: {report.last_error}")

    def reload(self) -> None:
        """The serving process's hot reload: the registry's champion (and shadow) now."""
        self.state.holder.check()
