"""The fast signals of a monitoring run on its page: recall on the frauds confirmed so far, CBPE's
estimate (provisional) beside the realized figures once a day's labels matured, each with its 95 %
interval, and the concept-drift suspicion. Read from ``monitoring_runs.summary["signals"]``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudops.dashboard.contracts import Chart, Kpi, Series, Table

DAY_COLUMNS = [
    "day",
    "state",
    "confirmed_frauds",
    "confirmed_recall",
    "cbpe_recall",
    "realized_recall",
    "cbpe_roc_auc",
    "realized_roc_auc",
    "cbpe_precision",
    "realized_precision",
]


def _band(interval: dict[str, Any] | None) -> str:
    """``value [low–high]`` of an interval (blank when unknown)."""
    if not interval or interval.get("value") is None:
        return ""
    low, high = interval.get("low"), interval.get("high")
    if low is None or high is None:
        return f"{interval['value']:.3f}"
    return f"{interval['value']:.3f} [{low:.3f}–{high:.3f}]"


def _value(interval: dict[str, Any] | None, key: str = "value") -> float | None:
    return None if not interval else interval.get(key)


def signal_kpis(signals: dict[str, Any]) -> list[Kpi]:
    window = signals.get("window") or {}
    confirmed = signals.get("window_confirmed") or {}
    suspected = bool(signals.get("concept_drift_suspected"))
    return [
        Kpi(
            "concept_drift",
            "Concept drift",
            "suspected" if suspected else "not suspected",
            severity="warning" if suspected else "ok",
            hint=str(signals.get("reason") or ""),
        ),
        Kpi(
            "confirmed_recall",
            "Recall on confirmed frauds",
            _value(confirmed.get("recall")),
            hint=f"{_band(confirmed.get('recall'))}; CBPE expects "
            f"{confirmed.get('expected_recall') or 0:.3f} "
            f"({confirmed.get('confirmed', 0)} confirmed)",
        ),
        Kpi(
            "cbpe_roc_auc",
            "CBPE ROC-AUC (provisional)",
            _value(window.get("roc_auc")),
            hint=_band(window.get("roc_auc")),
        ),
        Kpi(
            "cbpe_recall",
            "CBPE recall (provisional)",
            _value(window.get("recall")),
            hint=_band(window.get("recall")),
        ),
    ]


def day_frame(signals: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for d in signals.get("days") or []:
        estimate = d.get("estimate") or {}
        real = d.get("realized") or {}
        rows.append(
            {
                "day": d["day"],
                "state": "realized" if d.get("mature") else "provisional",
                "confirmed_frauds": d.get("confirmed"),
                "confirmed_recall": _band(d.get("confirmed_recall")),
                "cbpe_recall": _band(estimate.get("recall")),
                "realized_recall": real.get("recall"),
                "cbpe_roc_auc": _band(estimate.get("roc_auc")),
                "realized_roc_auc": real.get("roc_auc"),
                "cbpe_precision": _band(estimate.get("precision")),
                "realized_precision": real.get("precision"),
            }
        )
    return pd.DataFrame(rows, columns=DAY_COLUMNS)


def signal_charts(signals: dict[str, Any]) -> list[Chart]:
    days = signals.get("days") or []
    x = [d["day"] for d in days]

    def est(figure: str, key: str) -> list[float | int | None]:
        return [_value((d.get("estimate") or {}).get(figure), key) for d in days]

    def real(figure: str) -> list[float | int | None]:
        return [(d.get("realized") or {}).get(figure) for d in days]

    confirmed = [_value(d.get("confirmed_recall")) for d in days]
    return [
        Chart(
            "signals_recall",
            "Recall per prediction day: confirmed frauds, CBPE (95% band), realized",
            "line",
            x,
            [
                Series("confirmed frauds", confirmed),
                Series("CBPE", est("recall", "value")),
                Series("CBPE low", est("recall", "low")),
                Series("CBPE high", est("recall", "high")),
                Series("realized", real("recall")),
            ],
            y_title="recall",
        ),
        Chart(
            "signals_roc_auc",
            "ROC-AUC per prediction day: CBPE (95% band) and realized once mature",
            "line",
            x,
            [
                Series("CBPE", est("roc_auc", "value")),
                Series("CBPE low", est("roc_auc", "low")),
                Series("CBPE high", est("roc_auc", "high")),
                Series("realized", real("roc_auc")),
            ],
            y_title="ROC-AUC",
        ),
    ]


def signal_table(signals: dict[str, Any]) -> Table:
    source = signals.get("calibration_source") or "?"
    return Table(
        "signals",
        f"Fast signals per prediction day (calibration: {source}; 95% intervals)",
        day_frame(signals),
    )
