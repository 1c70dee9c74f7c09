"""Issue 20 points 1 and 4: the operating point chosen at training, stored with the model and
used by the Scorer; one vocabulary of figures for evaluation, gate, shadow and monitoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudops.config import GateSettings, LogRegParams, ServingSettings
from fraudops.config.model_sections import TrainingSettings
from fraudops.metrics import better, compute_metrics
from fraudops.models.calibration import Calibrator
from fraudops.models.portable import LogRegModel, load_model_dir
from fraudops.monitoring.performance import classification_metrics
from fraudops.monitoring.shadow import compare_shadow
from fraudops.registry import LoadedModel
from fraudops.scoring import Scorer
from fraudops.training.evaluation import context_of, evaluate
from fraudops.training.features import feature_matrix, label_vector
from fraudops.training.gate import champion_checks
from fraudops.training.operating import choose_operating_point
from fraudops.training.split import time_split
from fraudops.training.threshold import choose_threshold
from fraudops.training.trainers import train_logreg
from tests.unit.training_fixtures import SMALL_SPEC, make_frame

NAMES = SMALL_SPEC.feature_names
TIERS = ServingSettings().risk_tiers


@pytest.fixture(scope="module")
def trained() -> tuple[LogRegModel, dict[str, pd.DataFrame]]:
    frame = make_frame(6000, seed=5).sort_values("ts").reset_index(drop=True)
    split = time_split(frame, SMALL_SPEC, validation_fraction=0.2, holdout_fraction=0.25)
    slices = split.slices()
    model = train_logreg(
        feature_matrix(slices["train"], NAMES),
        label_vector(slices["train"], SMALL_SPEC),
        params=LogRegParams(),
        seed=3,
        feature_names=NAMES,
        spec_name="small",
        default_binned=["amount"],
    )
    return model, slices


def _scored(model: LogRegModel, part: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = feature_matrix(part, NAMES)
    return X, model.predict_proba(X), label_vector(part, SMALL_SPEC)


def _loaded(model: LogRegModel, tmp_path: Path) -> LoadedModel:
    model.save(tmp_path / "m")
    reloaded = load_model_dir(tmp_path / "m")
    return LoadedModel(reloaded, reloaded.manifest, "fraudops-small", "1", None, "test")


def test_the_expected_loss_point_is_stored_with_the_model_and_used_by_the_scorer(
    trained: tuple[LogRegModel, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    model, slices = trained
    _, val_scores, val_labels = _scored(model, slices["validation"])
    cfg = TrainingSettings()  # the default decision: expected_loss
    choice = choose_operating_point(
        val_labels, val_scores, cfg, SMALL_SPEC, context_of(slices["validation"], SMALL_SPEC)
    )
    assert choice.point.policy == "expected_loss" and choice.point.uses_amount
    assert choice.point.amount_feature == "amount"
    decided = model.with_decision(
        choice.threshold, choice.calibrator.to_dict(), choice.point.to_dict()
    )
    scorer = Scorer(_loaded(decided, tmp_path), TIERS)
    X, scores, _ = _scored(model, slices["holdout"])
    amounts = slices["holdout"]["amount"].to_numpy(dtype=np.float64)
    # flag when the calibrated probability × the amount reaches the review cost
    expected = Calibrator.from_dict(choice.calibrator.to_dict())(scores) * amounts >= cfg.cost_fp
    assert 0 < expected.sum() < len(expected)
    np.testing.assert_array_equal(scorer.score(X).predictions.astype(bool), expected)
    # a $2,000 row and a $5 row at the same score: only the large one is worth a review
    row = X[np.argmax(scores)].copy()
    rows = np.vstack([row, row])
    rows[0, NAMES.index("amount")], rows[1, NAMES.index("amount")] = 2000.0, 5.0
    assert scorer.score(rows).predictions.tolist() == [1, 0]
    calibrated = scorer.calibrate(scores)
    assert calibrated is not None and calibrated.max() <= 1.0
    # the manifest's threshold is the cut of the same alert volume on validation
    flagged = choice.flag(val_scores, context_of(slices["validation"], SMALL_SPEC))
    assert int((val_scores >= choice.threshold).sum()) == int(flagged.sum())


def test_a_version_without_an_operating_point_decides_by_its_threshold(
    trained: tuple[LogRegModel, dict[str, pd.DataFrame]], tmp_path: Path
) -> None:
    model, slices = trained
    old = model.with_threshold(0.6)
    assert old.manifest.decision is None and old.manifest.calibration is None
    scorer = Scorer(_loaded(old, tmp_path), TIERS)
    X, scores, _ = _scored(model, slices["holdout"])
    assert scorer.point is None and scorer.calibrate(scores) is None
    np.testing.assert_array_equal(scorer.score(X).predictions, (scores >= 0.6).astype(np.int8))


@pytest.mark.parametrize("policy", ["best_f1", "min_cost", "target_recall"])
def test_cut_decisions_use_the_threshold_chooser(
    trained: tuple[LogRegModel, dict[str, pd.DataFrame]], policy: str
) -> None:
    model, slices = trained
    _, scores, labels = _scored(model, slices["validation"])
    cfg = TrainingSettings(decision=policy)
    choice = choose_operating_point(
        labels, scores, cfg, SMALL_SPEC, context_of(slices["validation"], SMALL_SPEC)
    )
    cut = choose_threshold(labels, scores, policy, cost_fn=cfg.cost_fn, cost_fp=cfg.cost_fp)
    assert choice.threshold == choice.point.threshold == cut.threshold
    assert (choice.choice.recall, choice.choice.precision) == pytest.approx(
        (cut.recall, cut.precision)
    )


def test_the_alert_budget_flags_its_alerts_a_day(
    trained: tuple[LogRegModel, dict[str, pd.DataFrame]],
) -> None:
    model, slices = trained
    _, scores, labels = _scored(model, slices["validation"])
    context = context_of(slices["validation"], SMALL_SPEC)
    cfg = TrainingSettings(decision="alert_budget", alerts_per_day=5)
    choice = choose_operating_point(labels, scores, cfg, SMALL_SPEC, context)
    days = len(np.unique(context.days))
    assert int(choice.flag(scores, context).sum()) == 5 * days


def test_a_threshold_policy_alone_keeps_choosing_the_decision() -> None:
    assert TrainingSettings().decision == "expected_loss"
    assert TrainingSettings(threshold_policy="min_cost").decision == "min_cost"
    assert TrainingSettings(threshold_policy="min_cost", decision="best_f1").decision == "best_f1"


def test_evaluation_and_monitoring_figures_are_compute_metrics(
    trained: tuple[LogRegModel, dict[str, pd.DataFrame]],
) -> None:
    model, slices = trained
    _, scores, labels = _scored(model, slices["holdout"])
    context = context_of(slices["holdout"], SMALL_SPEC)
    flagged = scores >= 0.5
    figures = evaluate(
        labels, scores, 0.5, cost_fn=100, cost_fp=5, flagged=flagged, context=context, k=5
    )
    direct = compute_metrics(
        labels,
        scores,
        flagged,
        cost_fn=100,
        cost_fp=5,
        threshold=0.5,
        amounts=context.amounts,
        days=context.days,
        cards=context.cards,
        k=5,
    )
    assert figures == direct
    assert figures.amount_caught is not None and figures.precision_at_k is not None
    monitored = classification_metrics(
        labels, scores, flagged, cost_fn=100, cost_fp=5, amounts=context.amounts
    )
    assert monitored is not None
    assert monitored["amount_caught"] == pytest.approx(direct.amount_caught)
    assert {k: monitored[k] for k in ("roc_auc", "recall", "fpr", "fnr", "tp")} == {
        "roc_auc": direct.roc_auc,
        "recall": direct.recall,
        "fpr": direct.fpr,
        "fnr": direct.fnr,
        "tp": direct.tp,
    }


@pytest.mark.parametrize("metric", ["fpr", "fnr"])
def test_the_gate_and_the_shadow_comparison_judge_fpr_and_fnr_the_same_way(metric: str) -> None:
    assert better(metric) == "lower"
    # The gate: a challenger with the lower rate passes, one with the higher fails.
    gate = GateSettings(champion_metrics=[metric], champion_margin=0.0)
    assert champion_checks({metric: 0.01}, {metric: 0.05}, gate)[0].passed
    assert not champion_checks({metric: 0.05}, {metric: 0.01}, gate)[0].passed
    # The shadow comparison: the challenger with the lower rate is the better one.
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    served = [0.9, 0.8, 0.2, 0.1, 0.7, 0.6, 0.3, 0.2, 0.1, 0.05]  # flags 2 frauds, 2 legit
    shadow = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.3, 0.2, 0.1, 0.05]  # flags 4 frauds, 0 legit
    frame = pd.DataFrame(
        {
            "label": labels,
            "probability": served,
            "prediction": [int(p >= 0.5) for p in served],
            "model_version": ["2"] * 10,
            "shadow_version": ["3"] * 10,
            "shadow_probability": shadow,
        }
    )
    report = compare_shadow(frame, thresholds={"3": 0.5}, gate_metrics=[metric])
    assert report is not None
    [entry] = report.comparisons
    assert entry.challenger is not None and entry.champion is not None
    assert entry.challenger[metric] < entry.champion[metric]
    assert entry.by_metric[metric] == "challenger" and entry.better == "challenger"
