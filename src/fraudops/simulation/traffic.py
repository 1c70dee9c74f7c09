"""A simulated month's traffic and the requests that carry it through the day.

Each month is one traffic sample (``fraudops.data.sampling``) of ``tx_per_day * 30`` transactions
with their true labels, seeded by ``simulation.seed`` and the month, drifted from the scenario's
onsets (data drift: the scenario's pattern; concept drift: high-value legitimate rows turned
fraud). A day's share goes out in requests of ``REQUEST_ROWS`` transactions spread evenly over
its 24 hours of simulated time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from fraudops.config import Scenario, Settings
from fraudops.data.sampling import request_records, sample_traffic
from fraudops.simulation.world import ServingWorld
from fraudops.spec import FeatureSpec

DAYS_PER_MONTH = 30  # simulated months are 30 days: cohorts and charts line up
REQUEST_ROWS = 250  # transactions per simulated request
SECONDS_PER_DAY = 86_400


def month_traffic(
    sim: Settings, spec: FeatureSpec, plan: Scenario, month: int, tx_per_day: int
) -> pd.DataFrame:
    """Month ``month`` (0-based) of transactions with their true labels, drifted as the
    scenario says from its (1-based) onset months."""
    data_drift = plan.data_drift_month is not None and month + 1 >= plan.data_drift_month
    concept_drift = plan.concept_drift_month is not None and month + 1 >= plan.concept_drift_month
    return sample_traffic(
        sim.data,
        spec,
        tx_per_day * DAYS_PER_MONTH,
        seed=sim.simulation.seed * 1000 + month,
        id_prefix=f"sim-m{month + 1:02d}-",
        data_drift=plan.drift_pattern if data_drift else None,
        concept_drift=plan.concept_drift if concept_drift else None,
    )


class Traffic:
    """The scenario's traffic, day by day: each month generated when its first day comes."""

    def __init__(
        self, sim: Settings, spec: FeatureSpec, plan: Scenario, start: datetime, tx_per_day: int
    ) -> None:
        self.sim, self.spec, self.plan, self.start = sim, spec, plan, start
        self.tx_per_day = tx_per_day
        self._month: pd.DataFrame | None = None

    def day(self, day: int) -> pd.DataFrame:
        """Day ``day`` (0-based) of the run: its transactions with their true labels."""
        month, in_month = divmod(day, DAYS_PER_MONTH)
        if in_month == 0 or self._month is None:
            self._month = month_traffic(self.sim, self.spec, self.plan, month, self.tx_per_day)
        per_day = self.tx_per_day
        return self._month.iloc[in_month * per_day : (in_month + 1) * per_day]

    def serve_day(self, world: ServingWorld, day: int) -> pd.DataFrame:
        """Send day ``day`` through ``world``; what was served with its true outcome:
        inference_id, transaction_id, request_time, label."""
        rows = self.day(day)
        records = request_records(rows, self.spec)
        chunks = max(1, -(-len(records) // REQUEST_ROWS))
        day_start = self.start + timedelta(days=day)
        times = [
            day_start + timedelta(seconds=(k + 0.5) * SECONDS_PER_DAY / chunks)
            for k in range(chunks)
        ]
        requests = [
            (at, records[k * REQUEST_ROWS : (k + 1) * REQUEST_ROWS]) for k, at in enumerate(times)
        ]
        answers = world.predict(requests)
        results = [
            (at, result) for at, answer in zip(times, answers, strict=True) for result in answer
        ]
        label = rows[self.spec.label_column].to_numpy()
        return pd.DataFrame(
            {
                "inference_id": [r["inference_id"] for _, r in results],
                "transaction_id": [r["transaction_id"] for _, r in results],
                "request_time": pd.to_datetime([at for at, _ in results], utc=True),
                "label": label[: len(results)].astype(np.int64),
            }
        )
