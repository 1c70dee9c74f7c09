"""The true outcomes of what was served, and their delivery as label events.

The simulation knows every served transaction's real outcome. It is confirmed with the label
simulator's delays (fraud 1-7 days, legitimate 1-30) and ingested through the label ingestion,
as a bank's feed would, once the simulated clock passes its confirmation time.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd

from fraudops.labels.ingest import LabelEvent, ingest_events
from fraudops.labels.simulate import true_label_events

if TYPE_CHECKING:
    from fraudops.runtime import Runtime


class Outcomes:
    """Every served prediction's true outcome, and the confirmations not yet delivered."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime  # the simulation's lake, and the listeners of its ingestions
        self.sim, self.spec = runtime.settings, runtime.spec
        self._served: list[pd.DataFrame] = []  # inference_id, transaction_id, request_time, label
        self._truth = pd.DataFrame(columns=["inference_id", "label"])
        self._pending: pd.DataFrame | None = None

    def served(self, truth: pd.DataFrame) -> None:
        """Predictions just served, with their true outcome (inference_id, transaction_id,
        request_time, label)."""
        self._served.append(truth)

    @property
    def truth(self) -> pd.DataFrame:
        """inference_id and true label of everything served so far."""
        self._confirm()
        return self._truth

    def deliver(self, now: datetime) -> int:
        """Ingest the outcomes confirmed by ``now``; how many label events were written."""
        self._confirm()
        if self._pending is None or self._pending.empty:
            return 0
        due_mask = self._pending["confirmed_at"] <= pd.Timestamp(now)
        due = self._pending[due_mask]
        self._pending = self._pending[~due_mask].reset_index(drop=True)
        if due.empty:
            return 0
        events = [
            LabelEvent(
                inference_id=inference_id,
                transaction_id=transaction_id,
                label=int(label),
                confirmed_at=pd.Timestamp(confirmed_at).to_pydatetime(),
                source=source,
                notes="simulation",
            )
            for inference_id, transaction_id, label, confirmed_at, source in zip(
                due["inference_id"].tolist(),
                due["transaction_id"].tolist(),
                due["label"].tolist(),
                due["confirmed_at"].tolist(),
                due["source"].tolist(),
                strict=True,
            )
        ]
        report = ingest_events(
            self.runtime.lake(),
            events,
            now=now,
            origin="simulation",
            listeners=self.runtime.commits,
        )
        return int(report.written)

    def _confirm(self) -> None:
        """Move the outcomes served so far into the confirmation queue, with their delays."""
        if not self._served:
            return
        served = pd.concat(self._served, ignore_index=True)
        self._served = []
        fresh = true_label_events(served, self.sim.labels, self.sim.labels.seed)
        self._truth = pd.concat([self._truth, served[["inference_id", "label"]]], ignore_index=True)
        self._pending = pd.concat([self._pending, fresh], ignore_index=True)
