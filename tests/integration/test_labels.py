"""Ground truth against a real lake (SQLite catalog under a tmp home): ingestion, the simulator,
coverage, the POST /v1/labels payload function and the `fraudops labels` commands."""

from __future__ import annotations

import datetime as dt
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from fraudops.cli import app as cli_app
from fraudops.config import Settings, load_settings
from fraudops.errors import LakeError
from fraudops.ids import uuid7
from fraudops.inference_log.records import encode, parse_line
from fraudops.inference_log.sink import PredictionSink
from fraudops.labels import (
    CoverageReport,
    DuplicateLabel,
    LabelsValidationError,
    SimulationReport,
    label_coverage,
    latest_labels,
    simulate_labels,
)
from fraudops.lake import Lake
from fraudops.runtime import Runtime
from fraudops.spec import BUILTIN_SPECS
from tests.labels_support import ingest, post_labels
from tests.unit.test_inference_log_records import make_record

SPEC = BUILTIN_SPECS["transactions30"]
T0 = dt.datetime(2025, 3, 1, 10, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture
def settings(home: Path) -> Settings:
    """A home whose lake tables exist: only `lake init` creates them, never a write."""
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        lake.init()
    return settings


def log_predictions(settings: Settings, specs: list[dict[str, Any]]) -> None:
    """Commit predictions (as the log writer would): each dict overrides make_record's fields."""
    rows = []
    for i, changes in enumerate(specs):
        record = make_record(SPEC, i, **changes)
        parsed = parse_line(encode(record))
        assert parsed is not None
        rows.append(parsed)
    with PredictionSink(
        settings, SPEC.name, open_lake=Runtime(settings, SPEC.name).lake_factory()
    ) as sink:
        assert sink.commit(rows).written == len(rows)


def stored(settings: Settings) -> list[dict[str, Any]]:
    with Lake.open(settings) as lake:
        rows = lake.read("labels").to_pylist()
    return sorted(rows, key=lambda r: r["event_id"])


@pytest.fixture
def logged(settings: Settings) -> Settings:
    """inf-0..inf-4 for transactions tx-0..tx-4; tx-4 was scored twice (inf-4, inf-5)."""
    log_predictions(
        settings,
        [{"inference_id": f"inf-{i}", "transaction_id": f"tx-{i}"} for i in range(5)]
        + [{"inference_id": "inf-5", "transaction_id": "tx-4"}],
    )
    return settings


def at(hours: float) -> str:
    return (T0 + dt.timedelta(hours=hours)).isoformat()


def _simulate(settings: Settings, **options: Any) -> SimulationReport:
    with Lake.open(settings) as lake:
        return simulate_labels(lake, **options)


def _coverage(settings: Settings, now: dt.datetime, **options: Any) -> CoverageReport:
    with Lake.open(settings) as lake:
        return label_coverage(lake, now, **options)


def test_unknown_ids_duplicates_and_conflicts_are_reported(logged: Settings) -> None:
    first = ingest(
        logged,
        None,
        [
            {"inference_id": "inf-0", "label": 1, "confirmed_at": at(24), "source": "chargeback"},
            {"inference_id": "inf-1", "label": 0, "confirmed_at": at(48), "notes": "all good"},
            {"inference_id": "nope", "label": 1, "confirmed_at": at(24)},
            {"transaction_id": "tx-404", "label": 1, "confirmed_at": at(24)},
            {"inference_id": "inf-2", "transaction_id": "tx-3", "label": 1},  # ids disagree
            {"transaction_id": "tx-4", "label": 1, "confirmed_at": at(30)},  # both of its scores
            {"inference_id": "inf-0", "label": 1, "confirmed_at": at(24)},  # repeats entry 0
        ],
        now=NOW,
    )
    assert first.received == 7 and first.written == 4
    assert first.resolved_by_transaction == 2
    assert [(u.index, u.reason) for u in first.unknown] == [
        (2, "no prediction has inference_id 'nope'"),
        (3, "no prediction has transaction_id 'tx-404'"),
        (4, "inference_id 'inf-2' scored transaction 'tx-2', not 'tx-3'"),
    ]
    assert first.duplicates == [DuplicateLabel(6, "inf-0", "repeats entry 0")]
    assert first.conflicts == []
    rows = stored(logged)
    assert [(r["inference_id"], r["transaction_id"], r["label"]) for r in rows] == [
        ("inf-0", "tx-0", 1),  # transaction filled in from the prediction
        ("inf-1", "tx-1", 0),
        ("inf-4", "tx-4", 1),
        ("inf-5", "tx-4", 1),
    ]
    assert rows[0]["source"] == "chargeback" and rows[1]["notes"] == "all good"
    assert rows[0]["confirmed_at"] == T0 + dt.timedelta(hours=24)
    assert {r["ingested_at"] for r in rows} == {NOW}

    second = ingest(
        logged,
        None,
        [
            {"inference_id": "inf-0", "label": 1, "confirmed_at": at(24)},  # already stored
            {"inference_id": "inf-1", "label": 1, "confirmed_at": at(72)},  # overturns, later
            {"inference_id": "inf-4", "label": 0, "confirmed_at": at(12)},  # older than stored
            {"inference_id": "inf-3", "label": 0, "confirmed_at": at(10)},  # in-batch conflict
            {"inference_id": "inf-3", "label": 1, "confirmed_at": at(20)},
        ],
        now=NOW,
    )
    assert second.written == 4
    assert len(second.duplicates) == 1 and second.duplicates[0].index == 0
    assert second.duplicates[0].reason == f"already stored as event {rows[0]['event_id']}"
    conflicts = {c.inference_id: c for c in second.conflicts}
    assert set(conflicts) == {"inf-1", "inf-3", "inf-4"}
    assert conflicts["inf-1"].stored_label == 0 and conflicts["inf-1"].label_in_force == 1
    assert conflicts["inf-1"].decided_by == "entry 1"
    assert conflicts["inf-4"].label_in_force == 1  # the stored, later confirmation stands
    assert conflicts["inf-4"].decided_by == f"stored event {rows[2]['event_id']}"
    assert conflicts["inf-3"].entries == [3, 4] and conflicts["inf-3"].label_in_force == 1

    with Lake.open(logged) as lake:
        latest = latest_labels(lake).set_index("inference_id")["label"].to_dict()
        assert latest == {"inf-0": 1, "inf-1": 1, "inf-3": 1, "inf-4": 1, "inf-5": 1}
        # What was known before the overturning confirmation of inf-1 (at 72 h):
        earlier = latest_labels(lake, as_of=T0 + dt.timedelta(hours=60))
        assert earlier.set_index("inference_id")["label"].to_dict()["inf-1"] == 0
        assert len(latest_labels(lake, inference_ids=["inf-3"])) == 1
    # The in-force labels are exactly what the report said.
    for inference_id, conflict in conflicts.items():
        assert latest[inference_id] == conflict.label_in_force


def test_same_confirmation_time_the_later_entry_wins(logged: Settings) -> None:
    ingest(
        logged,
        None,
        [
            {"inference_id": "inf-0", "label": 1, "confirmed_at": at(5)},
            {"inference_id": "inf-0", "label": 0, "confirmed_at": at(5)},
        ],
        now=NOW,
    )
    with Lake.open(logged) as lake:
        assert latest_labels(lake)["label"].tolist() == [0]


def test_a_batch_with_one_malformed_entry_writes_nothing(logged: Settings) -> None:
    good = [{"inference_id": f"inf-{i}", "label": 0} for i in range(4)]
    bad = [*good[:2], {"inference_id": "inf-2", "label": 0, "confirmed_at": "soon"}, *good[2:]]
    with pytest.raises(LabelsValidationError, match=r"entry 2, field 'confirmed_at'"):
        ingest(logged, None, bad, now=NOW)
    with Lake.open(logged) as lake:
        assert lake.count("labels") == 0

    status, body = post_labels(logged, SPEC, orjson.dumps(bad), now=NOW)
    assert status == 422 and body["detail"][0]["loc"] == ["body", 2, "confirmed_at"]
    with Lake.open(logged) as lake:
        assert lake.count("labels") == 0

    status, body = post_labels(logged, SPEC, orjson.dumps(good), now=NOW)
    assert status == 200 and body["written"] == 4 and len(body["event_ids"]) == 4
    status, body = post_labels(
        logged, SPEC, orjson.dumps({"transaction_id": "tx-4", "label": 1}), now=NOW
    )
    assert status == 200 and body["written"] == 2
    json.dumps(body)  # plain JSON all the way down


def test_labels_before_any_prediction_are_all_unknown(home: Path) -> None:
    # No lake yet: ingestion does not create one behind the user's back.
    settings = load_settings(home=home)
    with pytest.raises(LakeError, match="fraudops lake init"):
        ingest(settings, None, [{"inference_id": "x", "label": 1}], now=NOW)
    assert not (settings.home_dir / "lake").exists()
    with Lake.open(settings) as lake:
        lake.init()
    report = ingest(settings, None, [{"inference_id": "x", "label": 1}], now=NOW)
    assert report.written == 0 and len(report.unknown) == 1


def test_simulator_labels_arrive_over_time_with_the_seeds_delays(settings: Settings) -> None:
    n = 1_000
    log_predictions(
        settings,
        [
            {
                "inference_id": f"inf-{i:05d}",
                "request_time": T0 + dt.timedelta(minutes=i),
                "prediction": int(i % 5 == 0),
            }
            for i in range(n)
        ],
    )
    midway = T0 + dt.timedelta(days=10)
    early = _simulate(settings, now=midway, seed=11)
    assert early.predictions == n and early.simulated == n
    assert 0 < early.written < n and early.written + early.pending == n
    assert early.next_confirmation is not None and early.next_confirmation > midway
    # By day 10 every fraud confirmation (1-7 days) is in, the legitimate ones (1-30) partly.
    assert early.delay_days["fraud"][1] <= 7 and early.labels["fraud"] > 0
    assert early.agreement == pytest.approx(0.85, abs=0.04)  # of all drawn, due or not

    first_rows = stored(settings)
    assert all(r["confirmed_at"] <= midway for r in first_rows)
    late = _simulate(settings, now=NOW, seed=11)
    assert late.already_labelled == early.written and late.written == early.pending
    assert late.pending == 0
    rows = stored(settings)
    assert len(rows) == n and rows[: len(first_rows)] == first_rows  # nothing rewritten

    with Lake.open(settings) as lake:
        predictions = lake.read_frame("predictions").set_index("inference_id")
        labels = latest_labels(lake).set_index("inference_id")
    joined = labels.join(predictions[["request_time", "prediction"]])
    delay = (joined["confirmed_at"] - joined["request_time"]).dt.total_seconds() / 86_400
    fraud = joined["label"] == 1
    assert delay[fraud].between(1, 7).all() and delay[~fraud].between(1, 30).all()
    assert (joined["label"] == joined["prediction"]).mean() == pytest.approx(0.85, abs=0.04)
    assert set(joined.loc[fraud, "source"]) <= set(settings.labels.fraud_sources)
    assert set(joined.loc[~fraud, "source"]) <= set(settings.labels.legit_sources)

    again = _simulate(settings, now=NOW, seed=11)
    assert again.simulated == 0 and again.written == 0  # every prediction has its label


def test_simulator_drift_knobs_and_dry_run(settings: Settings) -> None:
    log_predictions(
        settings,
        [{"inference_id": f"inf-{i:05d}", "prediction": i % 2} for i in range(1_000)],
    )
    report = _simulate(settings, now=NOW, model_drift_mag=0.15, dry_run=True)
    assert report.effective_accuracy == pytest.approx(0.70)
    assert report.agreement == pytest.approx(0.70, abs=0.04)
    assert report.written == 0 and report.simulated == 1_000 and report.pending == 0
    with Lake.open(settings) as lake:
        assert lake.count("labels") == 0


def test_coverage_per_prediction_day_exact(settings: Settings) -> None:
    day1, day2 = T0, T0 + dt.timedelta(days=1)
    log_predictions(
        settings,
        [{"inference_id": f"a{i}", "request_time": day1} for i in range(4)]
        + [{"inference_id": f"b{i}", "request_time": day2} for i in range(2)]
        + [{"inference_id": "c0", "request_time": NOW + dt.timedelta(days=1)}],  # after as_of
    )
    ingest(
        settings,
        None,
        [
            {"inference_id": "a0", "label": 1, "confirmed_at": day1 + dt.timedelta(days=2)},
            {"inference_id": "a1", "label": 0, "confirmed_at": day1 + dt.timedelta(days=4)},
            # a1 overturned later: still one labelled prediction, days counted to the first.
            {"inference_id": "a1", "label": 1, "confirmed_at": day1 + dt.timedelta(days=9)},
            {"inference_id": "a2", "label": 0, "confirmed_at": day1 + dt.timedelta(days=6)},
            {"inference_id": "b0", "label": 0, "confirmed_at": day2 + dt.timedelta(days=1)},
            # Confirmed after as_of: not known yet.
            {"inference_id": "b1", "label": 1, "confirmed_at": day2 + dt.timedelta(days=50)},
        ],
        now=NOW,
    )
    as_of = T0 + dt.timedelta(days=20)
    report = _coverage(settings, as_of).to_dict()
    assert report["days"] == [
        {
            "day": "2025-03-01",
            "predictions": 4,
            "labelled": 3,
            "unlabelled": 1,
            "coverage_pct": 75.0,
            "fraud": 2,
            "legitimate": 1,
            "mean_days_to_confirmation": 4.0,  # (2 + 4 + 6) / 3
            "mature": False,  # below labels.mature_coverage 80%
        },
        {
            "day": "2025-03-02",
            "predictions": 2,
            "labelled": 1,
            "unlabelled": 1,
            "coverage_pct": 50.0,
            "fraud": 0,
            "legitimate": 1,
            "mean_days_to_confirmation": 1.0,
            "mature": False,
        },
    ]
    assert (report["predictions"], report["labelled"], report["unlabelled"]) == (6, 4, 2)
    assert report["coverage_pct"] == pytest.approx(66.6667)
    assert report["mean_days_to_confirmation"] == pytest.approx(3.25)  # (2 + 4 + 6 + 1) / 4

    later = _coverage(settings, NOW).to_dict()
    assert [d["coverage_pct"] for d in later["days"]] == [75.0, 100.0]
    assert later["days"][1]["mature"] is True and later["days"][1]["fraud"] == 1
    only_day2 = _coverage(settings, NOW, since=day2).to_dict()
    assert [d["day"] for d in only_day2["days"]] == ["2025-03-02"]


def test_cli_load_simulate_coverage(logged: Settings, tmp_path: Path) -> None:
    env = {"FRAUDOPS_HOME": str(logged.home)}
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_text("inference_id,label\ninf-0,1\ninf-1,yes\n")
    result = runner.invoke(cli_app, ["labels", "load", str(bad)], env=env)
    assert result.exit_code == 2
    assert "bad.csv row 2 (line 3), field 'label'" in " ".join(result.output.split())

    good = tmp_path / "truth.csv"
    good.write_text(
        "transaction_id,is_fraud,confirmed_at,source\n"
        "tx-0,1,2025-03-02T10:00:00Z,chargeback\n"
        "tx-9,0,2025-03-02T10:00:00Z,investigation\n"
    )
    result = runner.invoke(cli_app, ["labels", "load", str(good), "--json"], env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["written"] == 1 and report["unknown"][0]["transaction_id"] == "tx-9"

    result = runner.invoke(
        cli_app, ["labels", "simulate", "--now", "2025-06-01", "--seed", "3", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"] == 5  # the six predictions minus inf-0

    result = runner.invoke(
        cli_app, ["labels", "coverage", "--now", "2025-06-01T00:00:00", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    coverage = json.loads(result.stdout)
    assert coverage["predictions"] == 6 and coverage["coverage_pct"] == 100.0

    result = runner.invoke(cli_app, ["labels", "coverage", "--now", "2025-06-01"], env=env)
    assert result.exit_code == 0 and "Label coverage" in result.output
    result = runner.invoke(cli_app, ["labels", "coverage", "--now", "whenever"], env=env)
    assert result.exit_code == 2 and "--now" in result.output


# ---- F1: values out of range are named, never a 500 --------------------------------------


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1000-01-01T00:00:00Z"]
)
def test_a_confirmation_time_out_of_range_is_a_422_naming_it(logged: Settings, value: str) -> None:
    single = {"inference_id": "inf-0", "label": 1, "confirmed_at": value}
    status, body = post_labels(logged, SPEC, orjson.dumps(single), now=NOW)
    assert status == 422 and body["detail"][0]["loc"] == ["body", "confirmed_at"]
    good = {"inference_id": "inf-1", "label": 0, "confirmed_at": at(24)}
    status, body = post_labels(logged, SPEC, orjson.dumps([good, single]), now=NOW)
    assert status == 422 and body["detail"][0]["loc"] == ["body", 1, "confirmed_at"]
    assert body["detail"][0]["msg"]
    with Lake.open(logged) as lake:
        assert lake.count("labels") == 0  # nothing partial


def test_label_times_must_lie_between_the_prediction_and_now_plus_the_skew(
    logged: Settings, tmp_path: Path
) -> None:
    served = T0 + dt.timedelta(hours=2, minutes=30, seconds=15)  # inf-0's request_time
    skew = dt.timedelta(seconds=300)  # labels.max_clock_skew_s, by default
    cases = [  # (confirmed_at, accepted)
        (served - skew - dt.timedelta(seconds=1), False),  # before the prediction it labels
        (served - dt.timedelta(seconds=10), True),  # within the clocks' skew
        (NOW + skew + dt.timedelta(seconds=1), False),  # in the future
        (NOW + skew - dt.timedelta(seconds=1), True),
    ]
    for confirmed_at, accepted in cases:
        body = orjson.dumps(
            [
                {"transaction_id": "tx-4", "label": 1, "confirmed_at": at(30)},
                {"inference_id": "inf-0", "label": 1, "confirmed_at": confirmed_at.isoformat()},
            ]
        )
        status, payload = post_labels(logged, SPEC, body, now=NOW)
        if accepted:
            assert status == 200, payload
        else:
            assert status == 422 and payload["detail"][0]["loc"] == ["body", 1, "confirmed_at"]
    with Lake.open(logged) as lake:
        assert lake.count("labels") == 4  # 3 rows, then 1 (the transaction's a duplicate)
    # The CLI names the row and exits 2, no traceback.
    path = tmp_path / "late.jsonl"
    path.write_text(
        '{"inference_id": "inf-2", "label": 0}\n'
        '{"inference_id": "inf-3", "label": 1, "confirmed_at": "9999-12-31T23:59:59-01:00"}\n'
    )
    result = CliRunner().invoke(
        cli_app, ["labels", "load", str(path)], env={"FRAUDOPS_HOME": str(logged.home)}
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "late.jsonl line 2, field 'confirmed_at'" in " ".join(result.output.split())


# ---- F2: the same event sent any number of times at once is stored once --------------------


def test_identical_batches_sent_at_once_store_each_event_once(settings: Settings) -> None:
    times = [T0 + dt.timedelta(minutes=7 * i) for i in range(40)]
    log_predictions(
        settings,
        [
            {"inference_id": uuid7(t), "request_time": t, "transaction_id": f"t{i}"}
            for i, t in enumerate(times)
        ],
    )
    with Lake.open(settings) as lake:
        ids = lake.read_frame("predictions", ["inference_id"])["inference_id"].tolist()
    ids.sort()

    def send_at_once(bodies: list[bytes]) -> list[dict[str, Any]]:
        barrier = threading.Barrier(len(bodies))

        def send(body: bytes) -> dict[str, Any]:
            barrier.wait()
            status, payload = post_labels(settings, SPEC, body, now=NOW)
            assert status == 200, payload
            return payload

        with ThreadPoolExecutor(len(bodies)) as pool:
            return list(pool.map(send, bodies))

    for round_ in range(3):  # three identical 10-event batches at once, three rounds
        batch = [
            {"inference_id": i, "label": n % 2, "confirmed_at": at(48 + n)}
            if n % 3
            else {"inference_id": i, "label": 1}  # no time: the label in force is the key
            for n, i in enumerate(ids[10 * round_ : 10 * round_ + 10])
        ]
        reports = send_at_once([orjson.dumps(batch)] * 3)
        assert sum(r["written"] for r in reports) == 10
        assert sum(len(r["duplicates"]) for r in reports) == 20
        with Lake.open(settings) as lake:
            assert lake.count("labels") == 10 * (round_ + 1)
    # Two different batches at once: both stored fully, neither waits for a lock.
    first = [{"inference_id": i, "label": 0, "confirmed_at": at(50)} for i in ids[30:35]]
    second = [{"transaction_id": f"t{n}", "label": 1} for n in range(35, 40)]
    reports = send_at_once([orjson.dumps(first), orjson.dumps(second)])
    assert [r["written"] for r in reports] == [5, 5]
    rows = stored(settings)
    assert len(rows) == 40
    assert len({(r["inference_id"], r["label"]) for r in rows}) == 40
