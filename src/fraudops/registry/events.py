"""``model_events``: the history MLflow aliases do not keep (every registration, promotion,
refusal and rollback, with its reason and who did it). Rollback reads it back to find the
previous champion.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from fraudops.lake.schemas import MODEL_EVENTS

if TYPE_CHECKING:
    from fraudops.lake import Lake

EventType = Literal[
    "registered",
    "promoted",
    "promoted_below_floor",  # a retrain's winner under the gate's floors, better than the champion
    "not_promoted",
    "rejected",
    "rollback",
    "manual_promote",
    "shadowed",  # a retrain's winner put under the shadow alias (retrain.promote_via: shadow)
    "shadow_dropped",  # live traffic showed it no better than the champion
]
Trigger = Literal["train", "retrain", "manual", "rollback", "shadow"]
TABLE = MODEL_EVENTS
# Who acts when no person does: the pipeline's own gate and retrain policy (the `trigger` tells
# which); a simulation's runtime says "simulation". A governance action names the person.
SYSTEM_ACTOR = "fraudops"
ACTOR_COLUMN = "actor"

logger = logging.getLogger("fraudops.events")
# Events after which the alias points at `champion_after`.
CHAMPION_MOVES = ("promoted", "promoted_below_floor", "manual_promote", "rollback")


@dataclass(frozen=True)
class ModelEvent:
    spec: str
    model_name: str
    event_type: EventType
    trigger: Trigger
    reason: str
    version: str | None = None
    run_id: str | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    monitoring_run_id: str | None = None
    actor: str = SYSTEM_ACTOR
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    event_time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["metrics"] = json.dumps(self.metrics, default=float)
        return row

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "event_time": self.event_time.isoformat()}


def write_events(lake: Lake, events: list[ModelEvent]) -> None:
    """Write ``events`` to ``lake``'s ``model_events`` in one commit: all of them or none.

    A table created before the ``actor`` column gets the events without it (logged): training
    and retraining keep working on an old home until ``fraudops lake init`` adds the column.
    Governance actions, whose point is the person, check for the column before acting.
    """
    rows = [e.row() for e in events]
    if ACTOR_COLUMN not in lake.column_names(TABLE):
        logger.warning(
            "%s.%s has no %s column: not recorded (run `fraudops lake init --spec %s`)",
            lake.spec.name,
            TABLE,
            ACTOR_COLUMN,
            lake.spec.name,
        )
        rows = [{k: v for k, v in row.items() if k != ACTOR_COLUMN} for row in rows]
    lake.append(TABLE, rows)


def load_events(lake: Lake) -> pd.DataFrame:
    """The events in ``lake``, oldest first (``actor`` null for events of an older table)."""
    frame = lake.read_frame(TABLE)
    if ACTOR_COLUMN not in frame.columns:
        frame[ACTOR_COLUMN] = None
    return frame.sort_values("event_time", kind="stable").reset_index(drop=True)


def champion_history(events: pd.DataFrame, model_name: str) -> list[str]:
    """The champions in order of reign, replaying promotions and rollbacks.

    A promotion pushes its version; a rollback pops back to the version it restored. The last
    entry is the current champion by the record; the one before it is what a rollback restores.
    """
    stack: list[str] = []
    moves = events[(events["model_name"] == model_name) & events["event_type"].isin(CHAMPION_MOVES)]
    for event in moves.itertuples(index=False):
        after, before = str(event.champion_after), event.champion_before
        if event.event_type == "rollback":
            while stack and stack[-1] != after:
                stack.pop()
            if not stack:
                stack.append(after)
            continue
        if not stack and isinstance(before, str) and before:
            stack.append(before)  # a champion that predates the recorded history
        if not stack or stack[-1] != after:
            stack.append(after)
    return stack
