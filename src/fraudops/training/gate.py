"""The quality gate: configured floors first, then "not worse than the champion".

Both parts are pure functions of metric dicts; the pipeline scores the champion on the
challenger's holdout so that the comparison is like for like.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from fraudops.config import GateSettings
from fraudops.errors import ConfigError
from fraudops.metrics import better

Decision = Literal["promoted", "promoted_below_floor", "not_promoted", "rejected"]
PROMOTING: tuple[Decision, ...] = ("promoted", "promoted_below_floor")  # the alias moves


def promotes(decision: str) -> bool:
    """Whether a gate decision moves the champion alias."""
    return decision in PROMOTING


def _lower_is_better(metric: str) -> bool:
    """Which way ``metric`` is better: the one table of ``fraudops.metrics`` (as the shadow
    comparison reads it)."""
    try:
        return better(metric) == "lower"
    except KeyError as exc:
        raise ConfigError(f"the gate cannot compare {metric!r}: {exc.args[0]}") from None


@dataclass(frozen=True)
class GateCheck:
    name: str  # e.g. "min_roc_auc" or "champion_pr_auc"
    metric: str
    value: float
    threshold: float
    passed: bool
    kind: Literal["threshold", "champion"]

    def describe(self) -> str:
        lower = _lower_is_better(self.metric)
        op = ("<=" if lower else ">=") if self.passed else (">" if lower else "<")
        return f"{self.metric} {self.value:.4f} {op} {self.threshold:.4f}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "detail": self.describe()}


@dataclass(frozen=True)
class GateResult:
    decision: Decision
    reason: str
    checks: list[GateCheck]
    champion_version: str | None = None
    champion_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reason": self.reason,
            "checks": [c.to_dict() for c in self.checks],
            "champion_version": self.champion_version,
            "champion_metrics": self.champion_metrics,
        }

    def mlflow_metrics(self) -> dict[str, float]:
        """Each check as a 1/0 metric, plus the champion's figures on the same holdout."""
        out = {f"gate_{c.name}": float(c.passed) for c in self.checks}
        out.update({f"champion_{k}": float(v) for k, v in self.champion_metrics.items()})
        return out


def threshold_checks(
    metrics: Mapping[str, Any], trainer: str, gate: GateSettings
) -> list[GateCheck]:
    floors = {"roc_auc": gate.min_roc_auc, "pr_auc": gate.min_pr_auc}
    if trainer in gate.min_recall:
        floors["recall"] = gate.min_recall[trainer]
    return [
        GateCheck(
            name=f"min_{metric}",
            metric=metric,
            value=float(metrics[metric]),
            threshold=float(floor),
            passed=float(metrics[metric]) >= floor,
            kind="threshold",
        )
        for metric, floor in floors.items()
    ]


def champion_checks(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any],
    gate: GateSettings,
    margin: float | None = None,
) -> list[GateCheck]:
    """``margin`` (default ``gate.champion_margin``): how far the challenger may trail; a
    negative margin is a lead it must have."""
    margin = gate.champion_margin if margin is None else margin
    checks = []
    for metric in gate.champion_metrics:
        if challenger.get(metric) is None or champion.get(metric) is None:
            raise ConfigError(
                f"gate.champion_metrics names {metric!r}, which evaluation does not "
                f"produce here (have {sorted(k for k, v in challenger.items() if v is not None)})"
            )
        value, reference = float(challenger[metric]), float(champion[metric])
        if _lower_is_better(metric):
            limit = reference + margin
            passed = value <= limit
        else:
            limit = reference - margin
            passed = value >= limit
        checks.append(
            GateCheck(
                name=f"champion_{metric}",
                metric=metric,
                value=value,
                threshold=limit,
                passed=passed,
                kind="champion",
            )
        )
    return checks


def decide(
    metrics: Mapping[str, Any],
    trainer: str,
    gate: GateSettings,
    *,
    champion_metrics: Mapping[str, Any] | None = None,
    champion_version: str | None = None,
    margin: float | None = None,
    below_floor: bool = False,
) -> GateResult:
    """Reject on a missed floor; otherwise promote unless the champion is better beyond margin
    (``margin`` overrides ``gate.champion_margin``; negative: the lead a challenger needs).

    ``below_floor`` (a retrain replacing a collapsing champion): a challenger under a floor is
    still promoted — ``promoted_below_floor`` — when it passes the champion comparison at
    ``margin`` and, on every floor it misses, the champion scores no better on the same holdout:
    the floors guard against shipping a weak model, not against replacing a weaker one."""
    margin = gate.champion_margin if margin is None else margin
    floors = threshold_checks(metrics, trainer, gate)
    failed = [c for c in floors if not c.passed]
    if failed and below_floor and champion_metrics is not None:
        rescued = _below_floor(metrics, champion_metrics, floors, gate, margin, champion_version)
        if rescued is not None:
            return rescued
    if failed:
        reason = "failed thresholds: " + "; ".join(c.describe() for c in failed)
        return GateResult("rejected", reason, floors)
    if champion_metrics is None:
        return GateResult("promoted", "passed thresholds; no champion yet", floors)
    versus = champion_checks(metrics, champion_metrics, gate, margin)
    trailing = [c for c in versus if not c.passed]
    champion = {k: float(champion_metrics[k]) for k in gate.champion_metrics}
    label = f"champion v{champion_version}" if champion_version else "the champion"
    if trailing:
        shortfall = (
            f"trails {label} by more than {margin}"
            if margin > 0
            else f"does not beat {label}" + (f" by {-margin}" if margin < 0 else "")
        )
        reason = f"{shortfall} on the same holdout: " + "; ".join(c.describe() for c in trailing)
        return GateResult("not_promoted", reason, floors + versus, champion_version, champion)
    if margin > 0:
        reason = f"passed thresholds; not worse than {label} beyond {margin}"
    else:
        reason = (
            f"passed thresholds; at least as good as {label}"
            + (f" plus {-margin}" if margin < 0 else "")
            + " on the same holdout"
        )
    return GateResult("promoted", reason, floors + versus, champion_version, champion)


def _below_floor(
    metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any],
    floors: list[GateCheck],
    gate: GateSettings,
    margin: float,
    champion_version: str | None,
) -> GateResult | None:
    """The ``promoted_below_floor`` verdict, or None when the challenger does not earn it."""
    failed = [c for c in floors if not c.passed]
    versus = champion_checks(metrics, champion_metrics, gate, margin)
    if not all(c.passed for c in versus) or not any(
        (better(c.metric) == "higher" and c.value > float(champion_metrics[c.metric]))
        or (better(c.metric) == "lower" and c.value < float(champion_metrics[c.metric]))
        for c in versus
    ):
        return None  # a tie does not earn a promotion below the floors
    label = f"champion v{champion_version}" if champion_version else "the champion"
    for check in failed:
        theirs = champion_metrics.get(check.metric)
        if theirs is None or float(theirs) > check.value:
            return None
    champion = {k: float(champion_metrics[k]) for k in gate.champion_metrics}
    reason = (
        "below the gate's floors ("
        + "; ".join(c.describe() for c in failed)
        + f") but better than {label}, which is lower on the same holdout ("
        + "; ".join(f"{c.metric} {float(champion_metrics[c.metric]):.4f}" for c in failed)
        + "): promoted below floor, a person should review"
    )
    return GateResult("promoted_below_floor", reason, floors + versus, champion_version, champion)
