from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fraudops.training.charts import render_charts
from fraudops.training.evaluation import evaluate


def test_six_pngs_from_a_large_holdout(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(60_000) < 0.005
    scores = np.clip(rng.normal(0.1 + 0.6 * labels, 0.15), 0, 1)
    ev = evaluate(labels, scores, 0.5, cost_fn=100, cost_fp=5)
    started = time.perf_counter()
    paths = render_charts(
        tmp_path / "charts",
        labels=labels,
        scores=scores,
        evaluation=ev,
        importance={f"feature_{i}": float(i) for i in range(30)},
        class_counts={
            "train": (199_000, 1000),
            "validation": (28_400, 120),
            "holdout": (56_700, 300),
        },
        title="test",
    )
    elapsed = time.perf_counter() - started
    assert sorted(p.stem for p in paths) == sorted(
        [
            "roc_curve",
            "pr_curve",
            "confusion_matrix",
            "feature_importance",
            "class_balance",
            "score_distribution",
        ]
    )
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    assert elapsed < 20  # a generous bound on a shared machine; bench/ measures the real figure
