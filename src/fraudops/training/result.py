"""What a training (or retrain) run decided, typed: the CLI, the retrain policy, the demo and the
simulation read its fields; ``to_dict()`` is the `--json` output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fraudops.training.evaluation import Evaluation
from fraudops.training.gate import GateResult
from fraudops.training.retrain_data import RetrainSummary

# The gate's decision, or "shadowed": a retrain's winner that goes to shadow scoring first.
Outcome = Literal["promoted", "promoted_below_floor", "shadowed", "rejected", "not_promoted"]


@dataclass
class TrainingResult:
    spec: str
    trainer: str
    model_name: str
    run_id: str  # the MLflow run
    decision: Outcome
    reason: str
    exit_code: int
    version: str | None  # None: rejected, not registered
    threshold: float
    threshold_policy: str
    metrics: Evaluation  # the holdout's
    validation_metrics: Evaluation
    gate: GateResult  # with the champion's figures on the same holdout, if there was one
    champion_before: str | None
    champion_after: str | None
    split: dict[str, Any]  # TimeSplit.summary(): slice sizes and time ranges
    retrain: RetrainSummary | None = None  # what a retrain trained and judged on
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def champion_metrics(self) -> dict[str, float]:
        """The champion's figures on this run's holdout (empty: no champion to compare)."""
        return self.gate.champion_metrics

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "trainer": self.trainer,
            "model_name": self.model_name,
            "run_id": self.run_id,
            "decision": self.decision,
            "reason": self.reason,
            "exit_code": self.exit_code,
            "version": self.version,
            "threshold": self.threshold,
            "threshold_policy": self.threshold_policy,
            "metrics": self.metrics.to_dict(),
            "validation_metrics": self.validation_metrics.to_dict(),
            "gate": self.gate.to_dict(),
            "champion_before": self.champion_before,
            "champion_after": self.champion_after,
            "split": dict(self.split),
            "retrain": None if self.retrain is None else self.retrain.to_dict(),
            "timings": dict(self.timings),
        }
