"""Shared base of the settings sections, and the names each kind of choice may take.

Each list of names lives here once: the settings validate against these ``Literal`` types and the
code that dispatches on them (trainers, threshold policies) reads them with ``get_args``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

TrainerName = Literal["xgboost", "logreg"]
ThresholdPolicy = Literal["best_f1", "target_recall", "min_cost"]
# The operating point (fraudops.models.decision): a money decision, an alert budget or a cut.
DecisionPolicy = Literal["expected_loss", "alert_budget", "best_f1", "min_cost", "target_recall"]
LogBackend = Literal["spool", "redis", "none"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")
