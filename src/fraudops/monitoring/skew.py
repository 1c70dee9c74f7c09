"""Training-serving skew of derived features: the share of a window's served rows whose logged
derived features differ from an offline recomputation (features.served.derive_as_served: the
offline engine over the lake's history, limited to what had arrived when each row was served).

Zero when serving and training compute alike; a share above ``monitoring.skew_alert_share``
means the model saw other values in production than a retraining would give it (a store that
lost state, a label path that bypassed the store, a changed definition): the monitoring run
then sends a skew alert (alerting/skew.py) naming the features and their shares.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.alerting.dispatch import AlertOutcome
from fraudops.alerting.skew import SkewSummary
from fraudops.features.served import REQUEST_TIME, derive_as_served, logged, read_history
from fraudops.spec import FeatureSpec
from fraudops.timeutil import as_utc

if TYPE_CHECKING:
    from fraudops.lake import Lake


@dataclass
class SkewReport:
    """Rows checked, the share differing in any derived feature, and per feature."""

    rows: int
    share: float
    per_feature: dict[str, float] = field(default_factory=dict)
    alert_share: float = 0.0
    sent: AlertOutcome | None = None  # the skew alert of a monitoring run, when it alerted

    @property
    def alert(self) -> bool:
        return self.rows > 0 and self.share > self.alert_share

    def alert_summary(
        self, *, run_id: str, as_of: str, model_name: str, model_version: str
    ) -> SkewSummary:
        """What the skew alert of this report says."""
        return SkewSummary(
            run_id=run_id,
            as_of=as_of,
            model_name=model_name,
            model_version=model_version,
            rows=self.rows,
            share=self.share,
            alert_share=self.alert_share,
            per_feature=dict(self.per_feature),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "share": self.share,
            "per_feature": dict(self.per_feature),
            "alert_share": self.alert_share,
            "alert": self.alert,
            "sent": None if self.sent is None else self.sent.to_dict(),
        }


def check_skew(
    lake: Lake, spec: FeatureSpec, *, start: datetime, end: datetime, alert_share: float
) -> SkewReport:
    """The skew of the rows served in [start, end) (by request time)."""
    history = read_history(lake, spec)
    frame = history.frame
    served = history.served
    if served.any():
        requested = pd.to_datetime(frame[REQUEST_TIME], utc=True)
        inside = (requested >= pd.Timestamp(as_utc(start))) & (
            requested < pd.Timestamp(as_utc(end))
        )
        emit = served & inside.to_numpy()
    else:
        emit = served
    if not emit.any():
        return SkewReport(0, 0.0, {d.name: 0.0 for d in spec.derived}, alert_share)
    recomputed = derive_as_served(history, emit)
    rows = frame[emit]
    differs = np.zeros(len(rows), dtype=bool)
    per_feature = {}
    for d in spec.derived:
        online = rows[logged(d.name)].to_numpy(dtype=np.float64)
        offline = recomputed[d.name].to_numpy(dtype=np.float64)
        bad = online != offline  # exact: the two engines agree to the bit (NaN: never logged)
        per_feature[d.name] = float(bad.mean())
        differs |= bad
    return SkewReport(len(rows), float(differs.mean()), per_feature, alert_share)
