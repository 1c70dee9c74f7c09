"""Features: each feature's PSI and KS over the runs, the top drifting ones, severities, and one
feature's reference distribution (the model version's profile) against the latest window."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fraudops.dashboard.contracts import Chart, Filters, Kpi, PageData, Series, Table
from fraudops.dashboard.pages.common import (
    RUN_LINK,
    SEVERITY_ORDER,
    between,
    column_list,
    counts,
    event_markers,
    model_events,
    psi_bands,
    versions_of,
)
from fraudops.dashboard.pages.drift import monitoring_runs
from fraudops.dashboard.store import registry_has, small_table
from fraudops.lake.schemas import FEATURE_DRIFT, PREDICTIONS, PREDICTIONS_PARTITION_SOURCE
from fraudops.models.profile import NumericProfile
from fraudops.runtime import Runtime

if TYPE_CHECKING:
    from fraudops.models.profile import ReferenceProfile

TOP_N = 10
SAMPLE_ROWS = 50_000  # the current distribution: at most this many rows of the latest window
DETAIL_COLUMNS = [
    "run_id",
    "as_of",
    "model_version",
    "feature",
    "kind",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "wasserstein",
    "severity",
    "drifted",
]

_profiles: dict[tuple[str, str, str], ReferenceProfile] = {}
_profiles_lock = threading.Lock()


def build(runtime: Runtime, filters: Filters) -> PageData:
    runs = monitoring_runs(runtime, filters)
    drift = small_table(runtime, FEATURE_DRIFT, filters.spec)
    drift = drift[drift["run_id"].isin(set(runs["run_id"]))]
    detail = drift.drop(columns=["as_of"]).merge(
        runs[["run_id", "as_of", "model_version"]], on="run_id", how="inner"
    )
    detail = detail.sort_values(["as_of", "feature"], kind="stable").reset_index(drop=True)
    features = sorted(detail["feature"].unique().tolist()) if not detail.empty else []
    latest = detail[detail["run_id"] == runs["run_id"].iloc[-1]] if not runs.empty else detail
    top = latest.sort_values("psi", ascending=False, kind="stable").head(TOP_N)
    # Default: the feature that drifted most in the window, the one a reader came to see.
    worst = detail.sort_values("psi", ascending=False, kind="stable")["feature"]
    picked = filters.feature or (str(worst.iloc[0]) if not worst.empty else None)
    notes = []
    if picked is not None and picked not in features:
        notes.append(f"feature {picked!r} has no drift rows in this window")
    markers = event_markers(model_events(runtime, filters))
    one = detail[detail["feature"] == picked]
    x = column_list(one, "as_of")
    charts = [
        Chart(
            "psi",
            f"PSI of {picked or '–'} per run",
            "line",
            x,
            [Series("PSI", column_list(one, "psi"))],
            y_title="PSI",
            markers=markers,
            bands=psi_bands(runtime),
        ),
        Chart(
            "ks",
            f"KS statistic of {picked or '–'} per run",
            "line",
            x,
            [Series("KS statistic", column_list(one, "ks_statistic"))],
            y_title="KS",
            markers=markers,
        ),
        Chart(
            "top",
            "Top drifting features (latest run, PSI)",
            "bar",
            column_list(top, "feature"),
            [Series("PSI", column_list(top, "psi"))],
            y_title="PSI",
            bands=psi_bands(runtime),
        ),
        _severities(detail, features),
    ]
    distribution = None
    if picked is not None and not runs.empty:
        distribution, note = _distribution(runtime, filters, runs.iloc[-1], picked)
        if note:
            notes.append(note)
    if distribution is not None:
        charts.append(distribution)
    table = detail[[c for c in DETAIL_COLUMNS if c in detail]].iloc[::-1].reset_index(drop=True)
    return PageData(
        page="features",
        title="Features",
        kpis=_kpis(latest, picked),
        charts=charts,
        tables=[Table("features", "Every feature of every run", table, links={"run_id": RUN_LINK})],
        notes=notes,
        options={
            "features": features,
            "feature": [picked] if picked else [],
            "versions": versions_of((runs, "model_version")),
        },
    )


def _severities(detail: pd.DataFrame, features: list[str]) -> Chart:
    table = (
        detail.groupby(["feature", "severity"]).size().unstack(fill_value=0)
        if not detail.empty
        else pd.DataFrame()
    )
    rank = {name: i for i, name in enumerate(SEVERITY_ORDER)}
    order = sorted(table.columns, key=lambda s: rank.get(str(s).lower(), len(rank)))
    return Chart(
        "severity",
        "Severity of each feature over the runs",
        "stacked_bar",
        features,
        [Series(str(s), counts(table[s].reindex(features, fill_value=0))) for s in order],
        y_title="runs",
    )


def _kpis(latest: pd.DataFrame, picked: str | None) -> list[Kpi]:
    drifted = int(latest["drifted"].eq(True).sum()) if not latest.empty else 0
    kpis = [
        Kpi("features", "Features analysed (latest run)", len(latest)),
        Kpi("drifted", "Drifted (latest run)", drifted, severity="warning" if drifted else "ok"),
    ]
    if not latest.empty:
        worst = latest.sort_values("psi", ascending=False).iloc[0]
        kpis.append(
            Kpi(
                "worst",
                "Highest PSI (latest run)",
                str(worst["feature"]),
                hint=f"{worst['psi']:.3f}",
            )
        )
    if picked:
        kpis.append(Kpi("picked", "Feature shown", picked))
    return kpis


def _profile(runtime: Runtime, spec: str, version: str) -> ReferenceProfile:
    # A version's profile never changes: read once per process.
    from fraudops.registry.loading import load_reference_profile

    key = (runtime.settings.tracking_uri, spec, version)
    with _profiles_lock:
        if key in _profiles:
            return _profiles[key]
    if not registry_has(runtime, spec, version):
        raise LookupError(f"version {version} is not in the registry")
    profile, _ = load_reference_profile(runtime.settings, spec, version, client=runtime.mlflow)
    with _profiles_lock:
        _profiles[key] = profile
    return profile


def _distribution(
    runtime: Runtime, filters: Filters, run: pd.Series, feature: str
) -> tuple[Chart | None, str | None]:
    """Reference (training) shares per profile bin against a bounded sample of the run's window."""
    spec = filters.spec or runtime.spec_name
    version = str(run["model_version"])
    try:
        profile = _profile(runtime, spec, version)
    except Exception as exc:  # a version deleted from the registry, artifacts moved away
        return None, f"no reference profile for version {version}: {exc}"
    ref = profile.features.get(feature)
    if ref is None:
        return None, f"version {version}'s profile has no feature {feature!r}"
    values = _window_sample(runtime, spec, feature, run["window_start"], run["window_end"])
    if isinstance(ref, NumericProfile):
        edges = ref.edges
        labels = [f"< {edges[0]:.4g}"]
        labels += [f"{lo:.4g} – {hi:.4g}" for lo, hi in itertools.pairwise(edges)]
        labels.append(f"≥ {edges[-1]:.4g}")
        current = ref.bin_proportions(values) if len(values) else np.full(len(labels), np.nan)
        reference = ref.proportions
    else:
        labels = [str(c) for c in ref.categories]
        reference = ref.proportions
        counts = pd.Series(values).value_counts()
        total = max(len(values), 1)
        current = np.array([counts.get(c, 0) / total for c in ref.categories], dtype=float)
    chart = Chart(
        "distribution",
        f"{feature}: reference (v{version} training) vs run {run['run_id']} window "
        f"({len(values):,} rows)",
        "bar",
        labels,
        [
            Series("reference", [float(v) for v in reference]),
            Series("current", [None if np.isnan(v) else float(v) for v in current]),
        ],
        x_title="reference bins",
        y_title="share",
    )
    return chart, None if len(values) else "no predictions in the latest run's window"


def _window_sample(
    runtime: Runtime, spec: str, feature: str, start: datetime, end: datetime
) -> np.ndarray:
    """The feature's values in [start, end): day partitions pruned, one column, bounded."""
    if pd.isna(start) or pd.isna(end):
        return np.array([], dtype=float)
    where = between(PREDICTIONS_PARTITION_SOURCE, start, end)
    table = runtime.lake(spec).table(PREDICTIONS)
    arrow = table.scan(row_filter=where, selected_fields=(feature,), limit=SAMPLE_ROWS).to_arrow()
    values = arrow.column(feature).to_numpy(zero_copy_only=False).astype(float)
    return values[np.isfinite(values)]
