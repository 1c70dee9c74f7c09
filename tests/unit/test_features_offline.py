"""The offline engine against independent computations of derived.py's definitions: a brute
force row by row (bit for bit: it adds in the documented order) and pandas per-key rolling
windows (to 1e-9: pandas adds in its own order); plus small cases checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.errors import ValidationError
from fraudops.features import derive, windows
from fraudops.features.windows import KeyedRows
from fraudops.spec import FeatureSpec
from tests.feature_reference import (
    RAW_SPEC,
    brute_force,
    pandas_rolling,
    random_raw_frame,
    raw_spec,
)

ROLLED = [d.name for d in raw_spec().derived if d.calendar is None and d.by is not None]


# A key's ttl of 12 h: on hourly times, some gaps are exactly it (still counted), many longer.
TTLS = [None, 12 * 3600.0]


def _with_ttl(spec: FeatureSpec, key_ttl_s: float | None) -> FeatureSpec:
    return spec if key_ttl_s is None else spec.model_copy(update={"key_ttl_s": key_ttl_s})


@pytest.mark.parametrize("key_ttl_s", TTLS)
def test_every_feature_equals_the_brute_force_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, key_ttl_s: float | None
) -> None:
    monkeypatch.setattr(windows, "BLOCK", 37)  # sums run in many blocks of rows
    frame = random_raw_frame(400).sample(frac=1.0, random_state=3)  # any input order
    assert frame["tx_time"].duplicated().sum() > 50  # many same-time ties
    spec = _with_ttl(raw_spec(), key_ttl_s)
    got = derive(frame, spec)
    since = got["cust_secs_since_last"]
    if key_ttl_s is not None:  # the rule is exercised: gaps past the ttl, one exactly at it
        assert (since == -1).sum() > 5 * 2 and (since == key_ttl_s).any()
        assert since.max() == key_ttl_s
    want = brute_force(frame, spec)
    assert list(got.columns) == [d.name for d in spec.derived]
    assert got.index.equals(frame.index)
    for name in got.columns:
        assert np.array_equal(got[name].to_numpy(np.float64), want[name].to_numpy(np.float64)), name
    assert got["cust_nb_tx_1d"].min() >= 1 and got["term_nb_tx_7d"].min() == 0
    assert 0 < got["term_risk_7d"].max() <= 1


def test_window_features_equal_pandas_rolling() -> None:
    frame = random_raw_frame(500, seed=11)
    spec = raw_spec()
    got = derive(frame, spec)
    want = pandas_rolling(frame, spec)
    assert sorted(want.columns) == sorted(n for n in ROLLED if n != "cust_secs_since_last")
    for name in want.columns:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-9, err_msg=name)


def test_labels_count_only_once_known() -> None:
    frame = random_raw_frame(300, seed=5)
    rng = np.random.default_rng(1)
    late = pd.to_timedelta(rng.integers(0, 15 * 24, len(frame)), unit="h")
    known = (frame["tx_time"] + late).where(rng.random(len(frame)) > 0.2)  # 20% never known
    spec = raw_spec()
    got = derive(frame, spec, label_known_at=known)
    want = brute_force(frame, spec, known_at=known)
    for name in ("term_risk_7d", "term_risk_3d"):
        assert np.array_equal(got[name].to_numpy(), want[name].to_numpy()), name
    # knowing labels later can only lower the rate, and here it does
    assert (got["term_risk_7d"] <= derive(frame, spec)["term_risk_7d"]).all()
    assert (got["term_risk_7d"] < derive(frame, spec)["term_risk_7d"]).any()


def test_history_rows_count_without_being_output() -> None:
    frame = random_raw_frame(300, seed=9)
    spec = raw_spec()
    emit = (frame["tx_time"] >= frame["tx_time"].quantile(0.6)).to_numpy()
    got = derive(frame, spec, emit=emit)
    assert got.index.equals(frame.index[emit])
    pd.testing.assert_frame_equal(got, derive(frame, spec).loc[emit])


def spec_of(*derived: dict[str, str]) -> FeatureSpec:
    return FeatureSpec.model_validate({**RAW_SPEC, "name": "small", "derived": list(derived)})


def tx(rows: list[tuple[str, str, str, float, int]]) -> pd.DataFrame:
    """(id, time, customer, amount, label) rows, all on terminal T."""
    return pd.DataFrame(
        {
            "tx_id": [r[0] for r in rows],
            "tx_time": pd.to_datetime([r[1] for r in rows], utc=True),
            "customer_id": [r[2] for r in rows],
            "terminal_id": "T",
            "amount": [r[3] for r in rows],
            "is_fraud": [r[4] for r in rows],
        }
    )


def test_hand_checked_windows() -> None:
    spec = spec_of(
        {"name": "n1d", "by": "customer_id", "window": "1d", "agg": "count"},
        {"name": "avg1d", "by": "customer_id", "window": "1d", "agg": "mean", "of": "amount"},
        {"name": "n_late", "by": "terminal_id", "window": "1d", "delay": "1d", "agg": "count"},
        {"name": "risk", "by": "terminal_id", "window": "1d", "delay": "1d", "agg": "fraud_rate"},
        {"name": "since", "by": "customer_id", "agg": "time_since_last"},
    )
    frame = tx(
        [
            ("b", "2024-01-01 10:00", "c", 10.0, 1),
            ("a", "2024-01-01 10:00", "c", 20.0, 0),  # same time, smaller id: before "b"
            (
                "c",
                "2024-01-02 10:00",
                "c",
                30.0,
                0,
            ),  # exactly 1 day later: 10:00 the day before is out
            ("d", "2024-01-02 11:00", "x", 5.0, 0),
        ]
    )
    got = derive(frame, spec)
    assert got["n1d"].tolist() == [2, 1, 1, 1]  # each row counts itself; "b" sees "a"
    assert got["avg1d"].tolist() == [15.0, 20.0, 30.0, 5.0]
    assert got["since"].tolist() == [0.0, -1.0, 86_400.0, -1.0]
    # the delayed window (t - 2d, t - 1d]: empty for the first day, then both 10:00 rows
    assert got["n_late"].tolist() == [0, 0, 2, 2]
    assert got["risk"].tolist() == [0.0, 0.0, 0.5, 0.5]


def test_calendar_night_and_weekend_boundaries() -> None:
    spec = spec_of(
        {"name": "night", "calendar": "night"},
        {"name": "weekend", "calendar": "weekend"},
        {"name": "hour", "calendar": "hour"},
        {"name": "dow", "calendar": "day_of_week"},
    )
    frame = tx(
        [
            ("1", "2024-01-05 23:59:59", "c", 1.0, 0),  # Friday
            ("2", "2024-01-06 06:59:59", "c", 1.0, 0),  # Saturday
            ("3", "2024-01-06 07:00:00", "c", 1.0, 0),
            ("4", "2024-01-07 12:00:00", "c", 1.0, 0),  # Sunday
            ("5", "2024-01-08 00:00:00", "c", 1.0, 0),  # Monday
        ]
    )
    got = derive(frame, spec)
    assert got["night"].tolist() == [0, 1, 0, 0, 1]
    assert got["weekend"].tolist() == [0, 1, 1, 1, 0]
    assert got["hour"].tolist() == [23, 6, 7, 12, 0]
    assert got["dow"].tolist() == [4, 5, 5, 6, 0]
    # a timezone-aware time is read in UTC: 01:00 in Paris is 00:00 UTC, night
    paris = frame.assign(tx_time=frame["tx_time"].dt.tz_convert("Europe/Paris"))
    pd.testing.assert_frame_equal(derive(paris, spec), got)


def test_seconds_timestamps_and_missing_keys() -> None:
    spec = FeatureSpec.model_validate(
        {
            **RAW_SPEC,
            "name": "secs",
            "timestamp_kind": "seconds",
            "derived": [
                {"name": "n", "by": "customer_id", "window": "1m", "agg": "count"},
                {"name": "since", "by": "customer_id", "agg": "time_since_last"},
            ],
        }
    )
    frame = pd.DataFrame(
        {
            "tx_id": ["1", "2", "3", "4"],
            "tx_time": [0.0, 30.5, 90.5, 91.0],
            "customer_id": ["a", "a", None, None],
            "amount": 1.0,
        }
    )
    got = derive(frame, spec)
    assert got["n"].tolist() == [1, 2, 1, 1]  # a row without key has no history
    assert got["since"].tolist() == [-1.0, 30.5, -1.0, -1.0]


def test_clear_errors() -> None:
    no_derived = FeatureSpec.model_validate(
        {**RAW_SPEC, "name": "plain", "derived": [], "keys": []}
    )
    with pytest.raises(ValidationError, match="declares no derived features"):
        derive(random_raw_frame(5), no_derived)
    with pytest.raises(ValidationError, match="no column\\(s\\) 'terminal_id'"):
        derive(random_raw_frame(5).drop(columns="terminal_id"), raw_spec())
    bad = random_raw_frame(5)
    bad.loc[2, "amount"] = np.nan
    with pytest.raises(ValidationError, match=r"column 'amount' has 1 missing .* row 3"):
        derive(bad, raw_spec())
    late = random_raw_frame(5)
    late.loc[1, "tx_time"] = pd.NaT
    with pytest.raises(ValidationError, match="column 'tx_time' has 1 missing time"):
        derive(late, raw_spec())


def test_time_coding_by_rank_finds_the_same_windows() -> None:
    """The rank coding (taken when key code x time span would overflow int64) bounds every
    window like the direct µs coding."""
    rng = np.random.default_rng(4)
    times = rng.integers(0, 50, 2_000).astype(np.int64) * 3_600_000_000
    codes = rng.integers(0, 30, 2_000).astype(np.int64)
    order = np.argsort(times, kind="stable")
    lookback = 5 * 86_400_000_000
    direct = KeyedRows.build(codes, times, order, lookback_us=lookback)
    ranked = KeyedRows.build(codes, times, order, lookback_us=lookback, by_rank=True)
    assert direct.universe is None and ranked.universe is not None
    for window, delay in ((3_600_000_000, 0), (86_400_000_000, 86_400_000_000), (7_200_000_000, 1)):
        for a, b in zip(direct.window(window, delay), ranked.window(window, delay), strict=True):
            assert np.array_equal(a, b)
    events = rng.integers(-10, 60, 300).astype(np.int64) * 3_600_000_000
    event_codes = rng.integers(0, 30, 300).astype(np.int64)
    counted = direct.count_at(event_codes, events)
    assert np.array_equal(counted, ranked.count_at(event_codes, events))
    assert 0 < counted.mean() < 10


@pytest.mark.parametrize("key_ttl_s", TTLS)
@pytest.mark.parametrize("late_labels", [False, True])
def test_offline_equals_the_online_memory_store_bit_for_bit(
    late_labels: bool, key_ttl_s: float | None
) -> None:
    """The online store (features/online_memory.py) warmed with the same rows answers every
    row's query with exactly the offline values: one contract, two engines (time_since_last's
    ttl rule too, with the store still holding the older rows)."""
    from fraudops.features.online_memory import MemoryStore
    from fraudops.features.raw_request import RawTransaction

    spec = _with_ttl(raw_spec(), key_ttl_s)
    frame = random_raw_frame(300, seed=3)
    rng = np.random.default_rng(2)
    known = None
    history = frame.copy()
    if late_labels:
        late = pd.to_timedelta(rng.integers(0, 15 * 24, len(frame)), unit="h")
        known = (frame["tx_time"] + late).where(rng.random(len(frame)) > 0.2)
        history["label_confirmed_at"] = known
        history["is_fraud"] = history["is_fraud"].where(known.notna())  # never known: no label
    store = MemoryStore(spec, late_s=1e9)
    store.warm(history)
    offline = derive(frame, spec, label_known_at=known)
    online = pd.DataFrame(
        [
            store.compute(
                RawTransaction(
                    time_us=row.tx_time.value // 1000,
                    keys={"customer_id": row.customer_id, "terminal_id": row.terminal_id},
                    values={"amount": row.amount},
                    transaction_id=row.tx_id,
                )
            )
            for row in frame.itertuples()
        ],
        index=frame.index,
    )
    assert sorted(online.columns) == sorted(offline.columns)
    for name in offline.columns:
        assert np.array_equal(offline[name].to_numpy(np.float64), online[name].to_numpy()), name


def test_label_events_the_label_in_force_counts() -> None:
    """A fraud confirmed on day 2 and withdrawn on day 4 counts for queries in between only;
    a row with no event has no label known."""
    spec = spec_of(
        {"name": "risk", "by": "terminal_id", "window": "30d", "delay": "1s", "agg": "fraud_rate"}
    )
    frame = tx(
        [("a", "2024-01-01 00:00", "c", 1.0, 1)]
        + [(f"q{d}", f"2024-01-0{d} 12:00", "c", 1.0, 0) for d in range(2, 7)]
    )
    events = pd.DataFrame(
        {
            "row": [0, 0, 0],
            "is_fraud": [1, 0, 1],
            "confirmed_at": pd.to_datetime(
                ["2024-01-02 06:00", "2024-01-04 06:00", "2024-01-06 12:00"], utc=True
            ),
        }
    )
    got = derive(frame.drop(columns="is_fraud"), spec, label_events=events)["risk"].tolist()
    # q2, q3 see one fraud among 1 (then 2) earlier rows; q4, q5 none; q6 again (at 12:00)
    assert got == [0.0, 1 / 1, 1 / 2, 0.0, 0.0, 1 / 5]
    with pytest.raises(ValidationError, match="not both"):
        derive(frame, spec, label_events=events, label_known_at=frame["tx_time"])


def test_label_events_equal_the_online_store() -> None:
    from fraudops.features.online_memory import MemoryStore
    from fraudops.features.raw_request import RawTransaction

    spec = raw_spec()
    frame = random_raw_frame(250, seed=8)
    rng = np.random.default_rng(6)
    picked = rng.choice(len(frame), 150)
    events = pd.DataFrame(
        {
            "row": picked,
            "is_fraud": rng.random(150) < 0.5,
            "confirmed_at": frame["tx_time"].iloc[picked].reset_index(drop=True)
            + pd.to_timedelta(rng.integers(0, 12, 150) * 24, unit="h"),  # same-time ties too
        }
    )
    store = MemoryStore(spec, late_s=1e9)
    store.warm(frame.assign(is_fraud=np.nan))
    for e in events.itertuples():
        tx_id = frame["tx_id"].iloc[e.row]
        assert store.record_label(tx_id, bool(e.is_fraud), e.confirmed_at.to_pydatetime())
    offline = derive(frame, spec, label_events=events)
    for name in ("term_risk_7d", "term_risk_3d"):
        online = [
            store.compute(
                RawTransaction(
                    time_us=row.tx_time.value // 1000,
                    keys={"customer_id": row.customer_id, "terminal_id": row.terminal_id},
                    values={"amount": row.amount},
                    transaction_id=row.tx_id,
                )
            )[name]
            for row in frame.itertuples()
        ]
        assert np.array_equal(offline[name].to_numpy(), np.array(online)), name
        assert offline[name].max() > 0
