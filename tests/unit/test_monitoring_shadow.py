"""Shadow scoring in monitoring: champion and challenger compared on the same labelled rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudops.config import Settings
from fraudops.labels.window import LabelledWindow, mature_labelled
from fraudops.models.profile import ReferenceProfile, build_profile
from fraudops.monitoring.performance import PerformanceReport, evaluate_performance
from fraudops.monitoring.record import seed_metrics
from fraudops.monitoring.result import MonitoringResult, Window
from fraudops.monitoring.run import attach_shadow, window_performance
from fraudops.monitoring.shadow import ShadowComparison, ShadowReport, compare_shadow
from fraudops.monitoring.window import performance_slice

START = datetime(2026, 3, 1, tzinfo=UTC)
GATE = ["roc_auc", "pr_auc"]


def _rows(
    labels: list[int],
    served: list[float],
    shadow: list[float | None],
    *,
    threshold: float = 0.5,
    champion: str = "2",
    challenger: str | None = "1",
) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame(
        {
            "label": labels,
            "probability": served,
            "prediction": [int(p >= threshold) for p in served],
            "model_version": [champion] * n,
            "shadow_version": [challenger if s is not None else None for s in shadow],
            "shadow_probability": shadow,
        }
    )


def test_both_sides_are_measured_on_the_same_rows_at_their_own_thresholds() -> None:
    labels = [1, 1, 1, 0, 0, 0, 0, 0]
    served = [0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.05]  # champion flags at 0.5: 0.9 0.6 0.7
    shadow = [0.8, 0.35, 0.32, 0.1, 0.2, 0.15, 0.05, 0.3]  # challenger's threshold 0.3
    result = compare_shadow(_rows(labels, served, shadow), thresholds={"1": 0.3}, gate_metrics=GATE)

    assert result is not None and result.rows == 8 and result.gate_metrics == GATE
    [entry] = result.comparisons
    assert (entry.champion_version, entry.challenger_version) == ("2", "1")
    assert (entry.rows, entry.positives, entry.challenger_threshold) == (8, 3, 0.3)
    champion, challenger = entry.champion, entry.challenger
    assert set(champion) == set(challenger) == {"roc_auc", "pr_auc", "recall", "precision", "f1"}
    y = np.array(labels)
    assert champion["roc_auc"] == pytest.approx(roc_auc_score(y, served))
    assert challenger["roc_auc"] == pytest.approx(roc_auc_score(y, shadow))
    assert challenger["pr_auc"] == pytest.approx(average_precision_score(y, shadow))
    # champion: tp 2 (0.9, 0.6), fp 1 (0.7); challenger at 0.3: tp 3, fp 1 (0.3)
    assert (champion["recall"], champion["precision"]) == pytest.approx((2 / 3, 2 / 3))
    assert (challenger["recall"], challenger["precision"]) == pytest.approx((1.0, 3 / 4))
    assert challenger["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 0))
    assert entry.better == "challenger"
    assert entry.by_metric == {"roc_auc": "challenger", "pr_auc": "challenger"}
    assert entry.delta["roc_auc"] == pytest.approx(challenger["roc_auc"] - champion["roc_auc"])


def test_rows_without_a_shadow_score_are_left_out_and_none_at_all_gives_none() -> None:
    labels = [1, 0, 1, 0, 0]
    frame = _rows(labels, [0.9, 0.1, 0.8, 0.2, 0.7], [0.7, 0.3, None, None, 0.2])
    result = compare_shadow(frame, thresholds={"1": 0.5}, gate_metrics=GATE)
    assert result is not None
    assert result.rows == 3 and result.comparisons[0].positives == 1
    none = _rows(labels, [0.9, 0.1, 0.8, 0.2, 0.7], [None] * 5)
    assert compare_shadow(none, thresholds={}, gate_metrics=GATE) is None
    assert compare_shadow(none.iloc[:0], thresholds={}, gate_metrics=GATE) is None


def test_each_champion_challenger_pair_is_its_own_comparison_most_rows_first() -> None:
    a = _rows([1, 0, 0, 1], [0.9, 0.2, 0.1, 0.6], [0.8, 0.1, 0.3, 0.7], challenger="1")
    b = _rows([1, 0, 1, 0, 0, 1], [0.7] * 6, [0.9, 0.1, 0.8, 0.2, 0.3, 0.6], challenger="3")
    c = _rows([1, 0], [0.9, 0.1], [0.6, 0.2], champion="1", challenger="3")
    result = compare_shadow(
        pd.concat([a, b, c]), thresholds={"1": 0.5, "3": 0.5}, gate_metrics=GATE
    )
    assert result is not None and result.rows == 12
    pairs = [(e.champion_version, e.challenger_version, e.rows) for e in result.comparisons]
    assert pairs == [("2", "3", 6), ("2", "1", 4), ("1", "3", 2)]
    # b: the champion served 0.7 to everyone (ROC-AUC 0.5), the challenger ranks perfectly
    assert result.comparisons[0].better == "challenger"


def test_an_unknown_threshold_leaves_the_challengers_decision_metrics_out() -> None:
    frame = _rows([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.3], [0.6, 0.2, 0.7, 0.1])
    result = compare_shadow(frame, thresholds={}, gate_metrics=[*GATE, "recall"])
    assert result is not None
    [entry] = result.comparisons
    assert entry.challenger_threshold is None
    assert entry.challenger["roc_auc"] == 1.0
    assert entry.challenger["recall"] is None and entry.challenger["f1"] is None
    assert entry.by_metric["recall"] is None and entry.better is None
    assert "recall" in entry.reason


def test_too_few_rows_or_one_class_give_counts_without_figures() -> None:
    frame = _rows([1, 0, 1], [0.9, 0.1, 0.8], [0.6, 0.2, 0.7])
    few = compare_shadow(frame, thresholds={"1": 0.5}, gate_metrics=GATE, min_samples=5)
    assert few is not None
    [entry] = few.comparisons
    assert entry.rows == 3 and entry.champion is None and entry.better is None
    assert "fewer than the 5" in entry.reason
    single = _rows([0, 0, 0], [0.9, 0.1, 0.8], [0.6, 0.2, 0.7])
    one_class = compare_shadow(single, thresholds={"1": 0.5}, gate_metrics=GATE)
    assert one_class is not None
    [entry] = one_class.comparisons
    assert entry.champion is None and "one class" in entry.reason


@pytest.mark.parametrize(
    ("shadow", "gate", "better"),
    [
        ([0.9, 0.8, 0.1, 0.2], GATE, "tie"),  # the same ranking as the champion
        ([0.2, 0.1, 0.8, 0.9], GATE, "champion"),  # the reverse
        ([0.9, 0.8, 0.1, 0.2], ["expected_cost"], "challenger"),  # lower cost wins
    ],
)
def test_better_weighs_the_gate_metrics(shadow: list[float], gate: list[str], better: str) -> None:
    # champion ranks perfectly but flags nothing at 0.95: every fraud missed, a high cost
    frame = _rows([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2], shadow, threshold=0.95)
    result = compare_shadow(
        frame, thresholds={"1": 0.5}, gate_metrics=gate, cost_fn=100.0, cost_fp=1.0
    )
    assert result is not None and result.comparisons[0].better == better


def test_a_mixed_verdict_when_each_side_wins_a_gate_metric() -> None:
    # Champion ranks P N N N P N: ROC-AUC 5/8, PR-AUC (1 + 2/5) / 2 = 0.7.
    # Challenger ranks N P P N N N: ROC-AUC 6/8, PR-AUC (1/2 + 2/3) / 2 ≈ 0.58.
    labels = [1, 1, 0, 0, 0, 0]
    served = [0.9, 0.15, 0.3, 0.25, 0.2, 0.05]
    shadow = [0.5, 0.6, 0.7, 0.1, 0.05, 0.02]
    result = compare_shadow(_rows(labels, served, shadow), thresholds={"1": 0.5}, gate_metrics=GATE)
    assert result is not None
    entry = result.comparisons[0]
    assert entry.by_metric == {"roc_auc": "challenger", "pr_auc": "champion"}
    assert entry.better == "mixed"


def _served(days: int = 10, per_day: int = 100, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * per_day
    truth = rng.random(n) < 0.2
    served = np.clip(rng.normal(0.2 + 0.5 * truth, 0.2), 0, 1)
    shadow = np.clip(rng.normal(0.2 + 0.3 * truth, 0.2), 0, 1)
    request_time = START + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
    request_time += pd.to_timedelta(rng.uniform(0, 86_000, n), unit="s")
    delay = np.where(truth, rng.uniform(1, 3, n), rng.uniform(1, 8, n))
    return pd.DataFrame(
        {
            "inference_id": [f"i{k}" for k in range(n)],
            "request_time": request_time,
            "probability": served,
            "prediction": (served >= 0.5).astype(int),
            "model_version": "2",
            "shadow_version": "1",
            "shadow_probability": shadow,
            "label": truth.astype(int),
            "confirmed_at": request_time + pd.to_timedelta(delay, unit="D"),
        }
    )


def test_mature_labelled_rows_are_the_rows_evaluate_performance_measures() -> None:
    frame = _served()
    as_of = START + timedelta(days=12)  # the first days are fully labelled, the last not
    mature = mature_labelled(frame, as_of=as_of, min_coverage=0.9)
    report = evaluate_performance(
        frame,
        as_of=as_of,
        min_coverage=0.9,
        min_samples=10,
        baseline_roc_auc=None,
        max_degradation=0.05,
        cost_fn=1.0,
        cost_fp=1.0,
    )
    assert 0 < len(mature) < len(frame)
    assert len(mature) == report.evaluated_rows
    assert report.metrics is not None
    assert roc_auc_score(mature["label"], mature["probability"]) == pytest.approx(
        report.metrics["roc_auc"]
    )


def _profile(settings: Settings) -> ReferenceProfile:
    spec = settings.feature_spec("transactions30")
    rng = np.random.default_rng(0)
    return build_profile(
        rng.normal(size=(200, len(spec.feature_names))),
        spec,
        scores=rng.random(200),
        baseline_metrics={"roc_auc": 0.9},
        threshold=0.5,
    )


def _performance(
    window: LabelledWindow,
    profile: ReferenceProfile,
    settings: Settings,
    thresholds: dict[str, float | None] | None = None,
) -> PerformanceReport:
    """A window's performance report with its shadow comparison, as a monitoring run makes it
    (every version counted: no champion named)."""
    perf = performance_slice(window, None)
    report, rows = window_performance(perf, profile, settings, as_of=window.end, champion=None)
    attach_shadow(report, rows, settings, thresholds or {})
    return report


def _window(frame: pd.DataFrame, as_of: datetime) -> LabelledWindow:
    return LabelledWindow(
        start=START,
        end=as_of,
        predictions=frame.drop(columns=["label", "confirmed_at"]),
        labels=frame[["inference_id", "label", "confirmed_at"]],
    )


def test_the_performance_output_gains_a_shadow_entry_and_mlflow_and_summary_carry_it(
    settings: Settings,
) -> None:
    frame = _served()
    as_of = START + timedelta(days=12)
    perf = _performance(_window(frame, as_of), _profile(settings), settings, {"1": 0.4})
    shadow = perf.shadow
    assert shadow is not None and perf.metrics is not None
    [entry] = shadow.comparisons
    assert entry.rows == perf.evaluated_rows == shadow.rows
    assert entry.champion is not None and entry.challenger is not None
    assert entry.champion["roc_auc"] == pytest.approx(perf.metrics["roc_auc"])
    assert entry.better == "champion"  # the shadow's scores separate the classes less
    assert perf.to_dict()["shadow"] == shadow.to_dict()

    result = _result(perf, as_of, predictions=len(frame))
    metrics = seed_metrics(result)
    assert metrics["shadow_roc_auc"] == pytest.approx(entry.challenger["roc_auc"])
    assert metrics["shadow_champion_roc_auc"] == pytest.approx(entry.champion["roc_auc"])
    for key in ("shadow_pr_auc", "shadow_recall", "shadow_precision", "shadow_f1"):
        assert key in metrics
    assert metrics["shadow_rows"] == entry.rows and metrics["shadow_version"] == 1.0
    [summary] = result.summary()["shadow"]
    assert summary["challenger_version"] == "1" and summary["better"] == "champion"
    assert summary["challenger"] == entry.challenger


def test_without_shadow_scores_there_is_no_shadow_entry(settings: Settings) -> None:
    frame = _served()
    frame["shadow_version"] = None
    frame["shadow_probability"] = np.nan
    as_of = START + timedelta(days=12)
    perf = _performance(_window(frame, as_of), _profile(settings), settings)
    assert perf.shadow is None and "shadow" not in perf.to_dict() and perf.metrics is not None
    assert not [k for k in seed_metrics(_result(perf, as_of)) if k.startswith("shadow")]
    assert _result(perf, as_of).summary()["shadow"] is None


def _result(perf: PerformanceReport, as_of: datetime, predictions: int = 0) -> MonitoringResult:
    window = Window(START, as_of, 12, predictions)
    return MonitoringResult(
        run_id="r",
        spec="transactions30",
        model_name="m",
        model_version="2",
        as_of=as_of,
        data_window=window,
        performance_window=window,
        drift=None,
        performance=perf,
        data_drift_detected=False,
        model_drift_detected=False,
        status="ok",
    )


def test_the_monitor_command_shows_both_models_side_by_side(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fraudops.cli.monitor_cmd import render_shadow

    figures: dict[str, float | None] = {
        "roc_auc": 0.979,
        "pr_auc": 0.827,
        "recall": 0.5,
        "precision": 1.0,
    }
    comparison = ShadowComparison(
        champion_version="1",
        challenger_version="2",
        rows=600,
        positives=20,
        challenger_threshold=0.5,
        champion=figures,
        challenger={**figures, "roc_auc": 0.963},
        better="champion",
        reason="roc_auc 0.9790 → 0.9630",
    )
    render_shadow(ShadowReport(gate_metrics=GATE, rows=600, comparisons=[comparison]))
    shown = capsys.readouterr().out
    assert "same 600 labelled predictions" in shown
    assert "0.979" in shown and "0.963" in shown
    assert "v2 vs champion v1 (20 frauds): better = champion" in shown
