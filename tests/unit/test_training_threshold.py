from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from fraudops.errors import ValidationError
from fraudops.training.threshold import choose_threshold, operating_points

# Scores high to low with their labels: fraud at 0.9, 0.8, 0.6, 0.3; legit elsewhere.
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
LABELS = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0])


def test_operating_points_count_each_cut() -> None:
    points = operating_points(LABELS, SCORES)
    assert points.thresholds[0] > 0.9  # "flag nothing" comes first
    assert points.tp.tolist() == [0, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4]
    assert points.fp.tolist() == [0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6]


def test_best_f1_picks_the_f1_maximising_cut() -> None:
    choice = choose_threshold(LABELS, SCORES, "best_f1")
    # Cut at 0.6: tp 3, fp 1, fn 1 -> F1 0.75, the best of all cuts.
    assert choice.threshold == 0.6
    assert choice.f1 == pytest.approx(0.75)
    assert choice.f1 == pytest.approx(f1_score(LABELS, choice.threshold <= SCORES))


def test_target_recall_picks_the_highest_threshold_reaching_it() -> None:
    assert choose_threshold(LABELS, SCORES, "target_recall", target_recall=0.5).threshold == 0.8
    assert choose_threshold(LABELS, SCORES, "target_recall", target_recall=0.75).threshold == 0.6
    full = choose_threshold(LABELS, SCORES, "target_recall", target_recall=1.0)
    assert full.threshold == 0.3 and full.recall == 1.0


def test_min_cost_weighs_misses_against_false_alarms() -> None:
    # Expensive misses: flag down to the last fraud (fn 0, fp 3 -> cost 3).
    cheap_alarms = choose_threshold(LABELS, SCORES, "min_cost", cost_fn=100, cost_fp=1)
    assert cheap_alarms.threshold == 0.3
    assert cheap_alarms.expected_cost == pytest.approx(3 / 10)
    # Expensive alarms: stop before the first false alarm (2 misses at 1 each).
    dear_alarms = choose_threshold(LABELS, SCORES, "min_cost", cost_fn=1, cost_fp=100)
    assert dear_alarms.threshold == 0.8
    assert dear_alarms.recall == 0.5 and dear_alarms.expected_cost == pytest.approx(0.2)
    # When the top score is a false alarm, flagging nothing at all is cheapest.
    nothing = choose_threshold(1 - LABELS, SCORES, "min_cost", cost_fn=1, cost_fp=100)
    assert nothing.threshold > 0.9
    assert nothing.recall == 0.0 and nothing.expected_cost == pytest.approx(0.6)


def test_tied_scores_form_one_cut() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0, 0])
    points = operating_points(labels, scores)
    assert points.thresholds[1:].tolist() == [0.9, 0.5, 0.1]
    assert points.fp.tolist() == [0, 0, 2, 3]


def test_matches_a_brute_force_scan() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(2000) < 0.05
    scores = np.round(np.clip(rng.normal(0.3 + 0.3 * labels, 0.15), 0, 1), 3)
    choice = choose_threshold(labels, scores, "best_f1")
    brute = max(np.unique(scores), key=lambda t: (f1_score(labels, scores >= t), t))
    assert choice.threshold == brute
    assert choice.f1 == pytest.approx(f1_score(labels, scores >= brute))


def test_no_fraud_and_unknown_policy_are_refused() -> None:
    with pytest.raises(ValidationError, match="no fraud rows"):
        choose_threshold(np.zeros(5), SCORES[:5], "best_f1")
    with pytest.raises(ValidationError, match="unknown threshold policy 'median'"):
        choose_threshold(LABELS, SCORES, "median")
