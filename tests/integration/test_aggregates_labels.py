"""label_stats and label_ingests against a real lake: ingestion recomputes the touched days,
a flipped label moves TP/FN, the counts equal a from-scratch join, and the two dashboard pages
built on a small generated lake have data in every chart."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from bench.dashboard_data import make_lake

from fraudops.aggregates import labels as label_stats
from fraudops.aggregates import read
from fraudops.config import Settings, load_settings
from fraudops.dashboard.contracts import Filters
from fraudops.dashboard.pages import inference, labels
from fraudops.labels.ingest import LabelEvent, ingest_events
from fraudops.labels.store import label_events, latest_labels, latest_of
from fraudops.lake import Lake
from fraudops.lake.schemas import LABEL_INGESTS, LABEL_STATS, LABELS, PREDICTIONS
from fraudops.runtime import Runtime

pytestmark = pytest.mark.integration

T0 = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)


@pytest.fixture
def settings(home: Path) -> Settings:
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        lake.init()
    return settings


@pytest.fixture
def lake(settings: Settings) -> Iterator[Lake]:
    with Lake.open(settings) as lake:
        yield lake


def some_predictions(lake: Lake, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    probability = rng.random(n)
    frame = pd.DataFrame(
        {
            "inference_id": [f"inf-{i}" for i in range(n)],
            "request_time": [T0 + dt.timedelta(hours=2 * i) for i in range(n)],  # ~33 days
            "model_version": np.where(np.arange(n) < n // 2, "1", "2"),
            "probability": probability,
            "prediction": (probability >= 0.5).astype(np.int32),
            "amount": np.round(rng.gamma(2.0, 50.0, n), 2),
        }
    )
    lake.append(PREDICTIONS, frame)
    return frame


def events_for(frame: pd.DataFrame, label: int, days: float, source: str) -> list[LabelEvent]:
    return [
        LabelEvent(
            inference_id=row.inference_id,
            label=label,
            confirmed_at=row.request_time + dt.timedelta(days=days),
            source=source,
        )
        for row in frame.itertuples()
    ]


def stored(lake: Lake) -> pd.DataFrame:
    frame = label_stats.from_rows(lake.read(LABEL_STATS))
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    return frame.sort_values(["day", "model_version"]).reset_index(drop=True)


def from_scratch(lake: Lake) -> pd.DataFrame:
    """The expected counts: every prediction joined with labels.store's label in force."""
    raw = lake.read_frame(
        PREDICTIONS, ["inference_id", "request_time", "model_version", "prediction", "amount"]
    )
    latest = latest_labels(lake)[["inference_id", "label", "source"]]
    joined = raw.merge(latest, on="inference_id", how="left")
    joined["day"] = joined["request_time"].dt.floor("D")
    flagged, label = joined["prediction"] == 1, joined["label"]
    joined["tp"] = (flagged & (label == 1)).astype(int)
    joined["fp"] = (flagged & (label == 0)).astype(int)
    joined["tn"] = (~flagged & (label == 0)).astype(int)
    joined["fn"] = (~flagged & (label == 1)).astype(int)
    joined["labelled"] = label.notna().astype(int)
    joined["tp_amount"] = np.where(joined["tp"] == 1, joined["amount"], 0.0)
    joined["fn_amount"] = np.where(joined["fn"] == 1, joined["amount"], 0.0)
    grouped = joined.groupby(["day", "model_version"])
    expected = grouped.agg(
        n=("inference_id", "size"),
        labelled=("labelled", "sum"),
        tp=("tp", "sum"),
        fp=("fp", "sum"),
        tn=("tn", "sum"),
        fn=("fn", "sum"),
        tp_amount=("tp_amount", "sum"),
        fn_amount=("fn_amount", "sum"),
    )
    return expected.reset_index()


def assert_matches(lake: Lake) -> None:
    got, want = stored(lake), from_scratch(lake)
    got = got[got["n"] > 0]
    columns = list(want.columns)
    pd.testing.assert_frame_equal(
        got[columns].reset_index(drop=True), want[columns], check_dtype=False, rtol=1e-9
    )


def test_ingestion_recomputes_the_touched_days_and_a_flip_moves_tp_to_fn(lake: Lake) -> None:
    frame = some_predictions(lake)
    flagged = frame[frame["prediction"] == 1].head(30)
    quiet = frame[frame["prediction"] == 0].head(50)
    report = ingest_events(
        lake,
        events_for(flagged, 1, 2, "chargeback")
        + events_for(quiet, 0, 10, "investigation")
        + [LabelEvent(inference_id="nobody", label=1, confirmed_at=T0)],
        now=NOW,
        origin="test",
        listeners=Runtime(lake.settings).commits,
    )
    assert report.written == 80 and len(report.unknown) == 1
    totals = stored(lake)[["labelled", "tp", "fp", "tn", "fn"]].sum()
    assert totals.to_dict() == {"labelled": 80, "tp": 30, "fp": 0, "tn": 50, "fn": 0}
    assert int(stored(lake)["n"].sum()) == 400  # first refresh: every day
    assert_matches(lake)

    # Ten fraud labels flip to legitimate, confirmed later: TP -> FP; a later batch.
    flips = flagged.head(10)
    report = ingest_events(
        lake,
        events_for(flips, 0, 20, "investigation"),
        now=NOW,
        origin="test",
        listeners=Runtime(lake.settings).commits,
    )
    assert len(report.conflicts) == 10
    totals = stored(lake)[["labelled", "tp", "fp", "tn", "fn"]].sum()
    assert totals.to_dict() == {"labelled": 80, "tp": 20, "fp": 10, "tn": 50, "fn": 0}
    # Legitimate ones confirmed as fraud: TN -> FN, and the amounts follow.
    missed = quiet.head(5)
    ingest_events(
        lake,
        events_for(missed, 1, 25, "chargeback"),
        now=NOW,
        origin="test",
        listeners=Runtime(lake.settings).commits,
    )
    got = stored(lake)
    assert int(got["fn"].sum()) == 5 and int(got["tn"].sum()) == 45
    assert got["fn_amount"].sum() == pytest.approx(missed["amount"].sum())
    assert int(got["source:chargeback"].sum()) == 25  # the label in force's source
    assert_matches(lake)

    delays = got[[c for c in got.columns if c.startswith("delay_")]].sum()
    assert int(delays["delay_3d"]) == 20 and int(delays["delay_14d"]) == 45
    assert int(delays["delay_30d"]) == 15

    ingests = lake.read_frame(LABEL_INGESTS)  # one row per ingestion, all at NOW
    assert sorted(ingests["unknown"]) == [0, 0, 1]
    assert sorted(ingests["conflicts"]) == [0, 5, 10]
    assert sorted(ingests["written"]) == [5, 10, 80]


def test_refresh_catches_up_labels_and_predictions_it_was_not_told_about(lake: Lake) -> None:
    frame = some_predictions(lake, 200)
    label_stats.refresh(lake)
    # Labels written by something else (no hint), and a later day's predictions.
    rows = [
        {
            "event_id": f"e{i}",
            "inference_id": r.inference_id,
            "label": 1,
            "confirmed_at": NOW,
            "ingested_at": NOW,
        }
        for i, r in enumerate(frame.head(12).itertuples())
    ]
    lake.append(LABELS, rows)
    lake.append(
        PREDICTIONS,
        [{"inference_id": "late", "request_time": NOW, "model_version": "2", "prediction": 1}],
    )
    report = label_stats.refresh(lake)
    assert report.mode == "refresh" and report.rows_folded < 201  # the touched days only
    assert int(stored(lake)["labelled"].sum()) == 12
    assert_matches(lake)
    assert label_stats.refresh(lake).mode == "nothing-new"
    before = stored(lake)
    label_stats.rebuild(lake)
    pd.testing.assert_frame_equal(before, stored(lake), check_dtype=False)


def test_the_label_in_force_is_the_labels_package_rule(lake: Lake) -> None:
    some_predictions(lake, 20)
    at = NOW - dt.timedelta(days=1)
    rows = [  # ties on confirmed_at broken by ingestion, then by event id
        {
            "event_id": "a1",
            "inference_id": "inf-1",
            "label": 1,
            "confirmed_at": at,
            "ingested_at": at,
        },
        {
            "event_id": "a2",
            "inference_id": "inf-1",
            "label": 0,
            "confirmed_at": at,
            "ingested_at": at,
        },
        {
            "event_id": "b1",
            "inference_id": "inf-2",
            "label": 0,
            "confirmed_at": at,
            "ingested_at": NOW,
        },
        {
            "event_id": "b2",
            "inference_id": "inf-2",
            "label": 1,
            "confirmed_at": at,
            "ingested_at": at,
        },
        {
            "event_id": "c1",
            "inference_id": "inf-3",
            "label": 1,
            "confirmed_at": NOW,
            "ingested_at": at,
        },
        {
            "event_id": "c2",
            "inference_id": "inf-3",
            "label": 0,
            "confirmed_at": at,
            "ingested_at": NOW,
        },
    ]
    lake.append(LABELS, rows)
    ours = label_stats.latest_in_force(lake.read(LABELS)).to_pandas()
    theirs = latest_of(label_events(lake))
    got = dict(zip(ours["inference_id"], ours["event_id"], strict=True))
    assert got == dict(zip(theirs["inference_id"], theirs["event_id"], strict=True))
    assert got == {"inf-1": "a2", "inf-2": "b1", "inf-3": "c1"}


def test_the_pages_draw_every_chart_from_a_generated_lake(tmp_path: Path) -> None:
    home = tmp_path / "bench-home"
    figures = make_lake(home, rows=60_000, days=100, seed=3)
    assert figures.labels > 0 and figures.model_events >= 5
    assert figures.timings["label_stats_rows"] > 0  # make_lake builds the aggregates
    settings = load_settings(home=home)
    read.clear_cache()
    with Runtime(settings) as runtime:
        page = inference.build(runtime, Filters())
        assert [c.key for c in page.charts if not c.has_data] == []
        kpis = {k.key: k.value for k in page.kpis}
        assert kpis["total_inferences"] == 60_000
        assert 0 < kpis["flagged_rate"] < 5
        assert kpis["fraud_caught"] > 0 and kpis["expected_cost"] > 0
        assert page.options["versions"] == ["1", "2", "3", "4"]
        volume = (
            page.chart("volume")
            if hasattr(page, "chart")
            else next(c for c in page.charts if c.key == "volume")
        )
        assert len(volume.x) == 100 and len(volume.markers) == 5  # per day; the champion moves
        assert sum(page.table("score_distribution").frame["predictions"]) == 60_000
        tiers = page.table("risk_tiers").frame
        assert tiers["risk_tier"].tolist() == ["low", "medium", "high", "critical"]
        assert tiers["predictions"].sum() == 60_000
        latency = page.table("latency").frame
        assert ((latency["p50"] > 1.5) & (latency["p50"] < 4)).all()  # log-normal, median 2.4
        assert page.notes == []

        # A naive bound is UTC (a query string has no zone).
        naive = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).replace(tzinfo=None)
        week = Filters(start=naive, version="4")
        narrow = inference.build(runtime, week)
        volume = next(c for c in narrow.charts if c.key == "volume")
        assert len(volume.x) <= 72 and [s.name for s in volume.series] == ["v4"]  # hourly
        assert narrow.kpis[0].value < 60_000

        page = labels.build(runtime, Filters())
        assert [c.key for c in page.charts if not c.has_data] == []
        coverage = page.table("coverage").frame
        assert int(coverage["n"].sum()) == 60_000
        recent, old = coverage["coverage_pct"].iloc[-1], coverage["coverage_pct"].iloc[0]
        assert recent < old  # the last days' labels are not all in yet
        assert set(page.table("sources").frame["source"]) >= {"chargeback", "investigation"}
        assert page.to_dict()["kpis"][0]["unit"] == "%"

    # A new commit the aggregates have not folded in yet: said on the page.
    with Lake.open(settings) as lake:
        lake.append(
            PREDICTIONS,
            pa.table(
                {
                    "inference_id": ["x1", "x2"],
                    "request_time": pa.array([NOW, NOW], pa.timestamp("us", tz="UTC")),
                }
            ),
        )
    with Runtime(settings) as runtime:
        notes = inference.build(runtime, Filters()).notes
    assert any("2 prediction(s) behind" in n for n in notes)
