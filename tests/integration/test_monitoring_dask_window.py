"""A monitoring run over the Dask window backend equals the local one on the same lake and window.

One champion, 14,000 served predictions over 40 days with their labels (and a shadow score, a few
rows of another version, and a batch committed twice), checked through both engines: the
Dask path's drift statistics equal compute_drift's to 1e-9 (the normalised Wasserstein within its
stated bound), the verdicts agree, and the performance cohorts and figures are the same.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.config import Settings
from fraudops.data.drift import generate_drifted_set
from fraudops.data.synthetic import generate_transactions
from fraudops.inference_log.records import PredictionRecord, encode, parse_line
from fraudops.inference_log.sink import PredictionSink
from fraudops.monitoring.backend import WindowChecks, WindowRequest
from fraudops.monitoring.dask_window import DaskWindow
from fraudops.monitoring.drift import DriftReport
from fraudops.monitoring.result import MonitoringResult
from fraudops.monitoring.run import check_window, open_window, run_monitoring
from fraudops.monitoring.window import LocalWindow
from fraudops.progress import Reporter
from fraudops.registry import load_model, load_reference_profile
from fraudops.runtime import Runtime
from fraudops.scoring import Scorer
from tests.integration.test_monitoring_run import true_labels_as_confirmed
from tests.registry_support import registry_client
from tests.serving_support import train_champion

AS_OF = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)
TOL = 1e-9
EXACT = ("psi", "ks_statistic", "ks_pvalue", "chi2_statistic", "chi2_pvalue", "jensen_shannon")
EQUAL = ("kind", "severity", "drifted", "psi_threshold", "pvalue_threshold")


def log_served(
    settings: Settings,
    frame: pd.DataFrame,
    start: datetime,
    days: int,
    *,
    version: str | None = None,
    shadow: bool = False,
) -> list[tuple[str, datetime]]:
    """Score ``frame`` with the champion and commit it as served over ``days`` from ``start``
    (as ``version`` when given; with a shadow challenger's score when ``shadow``)."""
    spec = settings.feature_spec("transactions30")
    scorer = Scorer(
        load_model(settings, spec, client=registry_client(settings)), settings.serving.risk_tiers
    )
    X = frame[spec.feature_names].to_numpy(dtype=np.float64)
    scored = scorer.score(X)
    noise = np.random.default_rng(1).normal(0, 0.05, len(frame))
    offsets = np.linspace(0, days * 86_400 - 1, len(frame))
    rows, served = [], []
    for i, row in enumerate(X.tolist()):
        served.append((str(uuid.uuid4()), start + timedelta(seconds=float(offsets[i]))))
        probability = float(scored.probabilities[i])
        record = PredictionRecord(
            inference_id=served[-1][0],
            request_time=served[-1][1],
            model_name=scorer.name,
            model_version=version or scorer.version,
            run_id=scorer.run_id,
            transaction_id=f"tx-{uuid.uuid4().hex[:12]}",
            customer_id=None,
            amount=row[spec.feature_names.index("transaction_amount")],
            features=dict(zip(spec.feature_names, row, strict=True)),
            probability=probability,
            prediction=int(scored.predictions[i]),
            threshold=scorer.threshold,
            risk_tier=str(scored.tiers[i]),
            latency_ms=1.0,
            model_latency_ms=0.5,
            shadow_version="7" if shadow else None,
            shadow_probability=float(np.clip(probability + noise[i], 0, 1)) if shadow else None,
        )
        rows.append(parse_line(encode(record)))
    with PredictionSink(
        settings, spec.name, open_lake=Runtime(settings, spec.name).lake_factory()
    ) as sink:
        assert sink.commit(rows).written == len(rows)
        # The same 40 records committed again (two drainers racing on a replay): counted once.
        assert sink.commit(rows[100:140]).written == 40
    return served


@pytest.fixture(scope="module")
def cluster(dask_cluster: Any) -> str:
    return str(dask_cluster.scheduler_address)


@pytest.fixture(scope="module")
def lake_home(tmp_path_factory: pytest.TempPathFactory, cluster: str) -> Settings:
    home = tmp_path_factory.mktemp("dask-monitoring") / "home"
    settings = train_champion(home, rows=10_000)
    spec = settings.feature_spec("transactions30")
    # Fresh samples at the training data's scale (its velocity features depend on the rows
    # it makes: see test_monitoring_run).
    clean = pd.concat(
        [generate_transactions(settings.data, spec, rows=10_000, seed=s) for s in (21, 22)]
    ).sample(14_000, random_state=0)
    served = log_served(settings, clean, AS_OF - timedelta(days=40), 40, shadow=True)
    true_labels_as_confirmed(settings, clean, served, AS_OF)
    # A few predictions answered by another version: left out of the champion's performance.
    log_served(settings, clean.iloc[:300], AS_OF - timedelta(days=20), 10, version="0")
    # Several partitions per window: one per group of at most 1,000 planned rows.
    compute = settings.compute.model_copy(
        update={"scheduler_address": cluster, "partition_rows": 1_000}
    )
    return settings.model_copy(update={"compute": compute})


def _both(settings: Settings, **options: Any) -> tuple[MonitoringResult, MonitoringResult]:
    results = []
    for engine in ("local", "dask"):
        with Runtime(settings, engine=engine) as runtime:  # type: ignore[arg-type]
            results.append(
                run_monitoring(runtime.monitoring_context(), alert=False, html=False, **options)
            )
    return results[0], results[1]


def _assert_same_drift(local: DriftReport, dask: DriftReport, bounds: dict[str, float]) -> None:
    """Every statistic to 1e-9, the normalised Wasserstein within ``bounds`` (0: to 1e-9)."""
    assert dask.current_rows == local.current_rows
    pairs = [(f, dask.feature(f.feature)) for f in local.features]
    assert local.score is not None and dask.score is not None
    pairs.append((local.score, dask.score))
    for mine, theirs in pairs:
        for key in EXACT:
            a, b = getattr(mine, key), getattr(theirs, key)
            if a is None:
                assert b is None, (mine.feature, key)
            else:
                assert b == pytest.approx(a, rel=TOL, abs=TOL), (mine.feature, key, a, b)
        for key in EQUAL:
            assert getattr(theirs, key) == getattr(mine, key), (mine.feature, key)
        assert (theirs.wasserstein is None) == (mine.wasserstein is None)
        if mine.wasserstein is not None and theirs.wasserstein is not None:
            bound = bounds.get(mine.feature, 0.0)
            assert abs(theirs.wasserstein - mine.wasserstein) <= bound + TOL * (
                1 + mine.wasserstein
            )
    for key in ("data_drift_detected", "drifted_features", "severity_counts", "max_severity"):
        assert getattr(dask, key) == getattr(local, key), key
    for key in ("mean_psi", "max_psi", "median_psi", "mean_ks", "max_ks", "median_ks"):
        assert getattr(dask, key) == pytest.approx(getattr(local, key), rel=TOL, abs=TOL)


def _assert_same_performance(local: MonitoringResult, dask: MonitoringResult) -> None:
    a, b = local.performance.to_dict(), dask.performance.to_dict()
    assert b.pop("cohorts") == a.pop("cohorts")  # every day: counts, coverage, figures
    assert b == a  # the mature figures, the verdict, the shadow comparison


def _request(runtime: Runtime, window_days: int) -> WindowRequest:
    profile, version = load_reference_profile(runtime.settings, runtime.spec, client=runtime.mlflow)
    return WindowRequest(
        profile=profile,
        champion=str(version.version),
        data_start=AS_OF - timedelta(days=window_days),
        perf_start=AS_OF - timedelta(days=60),
        as_of=AS_OF,
        html=True,
    )


def _checks(settings: Settings, window_days: int) -> tuple[WindowChecks, WindowChecks]:
    """Both engines' window checks (each engine's backend, chosen by its name)."""
    out = []
    for engine, kind in (("local", LocalWindow), ("dask", DaskWindow)):
        with Runtime(settings, engine=engine) as runtime:  # type: ignore[arg-type]
            backend = open_window(runtime.monitoring_context(), _request(runtime, window_days))
            assert isinstance(backend, kind)
            out.append(check_window(backend, settings, runtime.spec, Reporter()))
    return out[0], out[1]


def test_a_large_window_gives_the_local_statistics_from_partition_summaries(
    lake_home: Settings,
) -> None:
    local, dask = _checks(lake_home, window_days=35)
    assert local.drift is not None and dask.drift is not None
    assert dask.current_rows == local.current_rows > 10_000  # past scipy's exact KS: summaries
    assert dask.window_rows == local.window_rows == 14_300  # the 80 records logged twice once
    # The crossing intervals' values were gathered: the Wasserstein is exact too.
    assert not any(dask.wasserstein_bounds.values())
    _assert_same_drift(local.drift, dask.drift, dask.wasserstein_bounds)
    assert not dask.drift.data_drift_detected
    # The HTML reports' inputs are a bounded uniform sample on Dask, each prediction once.
    assert dask.html_current is not None
    assert len(dask.html_current) == dask.current_rows  # under html_sample_rows: all of them
    assert dask.html_current["inference_id"].is_unique and dask.notes

    # Too many rows in the crossing intervals to gather: an estimate within its stated bound.
    with Runtime(lake_home, engine="dask") as runtime:
        backend = open_window(runtime.monitoring_context(), _request(runtime, window_days=35))
        estimated = check_window(backend, lake_home, runtime.spec, Reporter(), refine_max_rows=0)
    assert estimated.drift is not None
    assert any(v > 0 for v in estimated.wasserstein_bounds.values())
    _assert_same_drift(local.drift, estimated.drift, estimated.wasserstein_bounds)
    for f in local.drift.features:  # and the bounds are small against what they bound
        if f.wasserstein is not None:
            assert estimated.wasserstein_bounds[f.feature] <= 0.05 * f.wasserstein + 1e-6


def test_a_monitoring_run_through_dask_equals_the_local_run(lake_home: Settings) -> None:
    local, dask = _both(lake_home, now=AS_OF, window_days=35)
    assert local.drift is not None and dask.drift is not None
    _assert_same_drift(local.drift, dask.drift, {})  # the Wasserstein exact too
    assert (dask.data_window, dask.performance_window) == (
        local.data_window,
        local.performance_window,
    )
    perf = local.performance
    assert perf.metrics is not None and perf.mature_cohorts > 0 and perf.immature_cohorts > 0
    assert perf.other_versions_excluded == 300 and perf.shadow is not None
    _assert_same_performance(local, dask)
    assert (dask.status, dask.model_drift_detected) == (local.status, local.model_drift_detected)


def test_monitor_run_engine_dask_flags_a_small_drifted_window_as_the_local_run(
    lake_home: Settings, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from fraudops.cli import app

    spec = lake_home.feature_spec("transactions30")
    drifted, _ = generate_drifted_set(lake_home.data, spec, pattern="run3", rows=30_000, seed=5)
    later = AS_OF + timedelta(days=10)
    log_served(lake_home, drifted.sample(2_000, random_state=0), later - timedelta(days=3), 3)
    with Runtime(lake_home, engine="local") as runtime:
        local = run_monitoring(
            runtime.monitoring_context(), now=later, window_days=3, html=False, alert=False
        )
    monkeypatch.setenv("FRAUDOPS_HOME", str(lake_home.home))
    monkeypatch.setenv("FRAUDOPS_COMPUTE__SCHEDULER_ADDRESS", cluster)
    monkeypatch.setenv("FRAUDOPS_COMPUTE__PARTITION_ROWS", "1000")
    command = ["monitor", "run", "--engine", "dask", "--now", later.isoformat(), "--window-days"]
    done = CliRunner().invoke(
        app, [*command, "3", "--no-html", "--no-alert", "--no-retrain", "--json"]
    )
    assert done.exit_code == 0, done.output
    output = json.loads(done.stdout)
    assert local.drift is not None and local.drift.feature("credit_limit").severity == "CRITICAL"
    assert output["status"] == local.status == "drift" and output["data_drift_detected"]
    # At most 10,000 rows: the window is gathered and checked by compute_drift itself, so
    # every figure is the local one, the Wasserstein too.
    expected = json.loads(json.dumps(local.to_dict(), default=str))
    assert output["drift"] == expected["drift"]
    assert output["performance"] == expected["performance"]
    assert output["data_window"] == expected["data_window"]
