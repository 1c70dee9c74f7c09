"""Raw card transactions (fraudops.data.raw) and the built-in spec `cards` that reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from fraudops.cli import app as cli_app
from fraudops.config import load_settings
from fraudops.data.raw import COLUMNS, RawConfig, RawDataset, generate_raw, write_raw
from fraudops.errors import ConfigError, ValidationError
from fraudops.lake.loader import read_input
from fraudops.lake.schemas import transactions_schema
from fraudops.lake.validation import validate_frame
from fraudops.spec import BUILTIN_SPECS, CARDS, FeatureSpec

DAY = pd.Timedelta(days=1)
SMALL = RawConfig(customers=800, terminals=1_600, days=60, seed=7)


@pytest.fixture(scope="module")
def small() -> RawDataset:
    return generate_raw(SMALL)


@pytest.fixture(scope="module")
def frame(small: RawDataset) -> pd.DataFrame:
    return small.to_pandas()


def test_same_seed_same_table_other_seed_other_table(small: RawDataset) -> None:
    assert generate_raw(SMALL).table.equals(small.table)
    other = generate_raw(RawConfig(customers=800, terminals=1_600, days=60, seed=8)).table
    assert not other.equals(small.table)


def test_columns_types_and_ids(small: RawDataset, frame: pd.DataFrame) -> None:
    assert small.table.column_names == COLUMNS
    assert small.table.schema.field("tx_time").type == pa.timestamp("us", tz="UTC")
    assert frame["tx_id"].is_unique
    assert frame["tx_id"].str.fullmatch(r"tx-\d{10}").all()
    assert frame["customer_id"].str.fullmatch(r"C\d{3}").all()
    assert frame["terminal_id"].str.fullmatch(r"T\d{4}").all()
    assert (frame["amount"] >= 0).all()
    assert (frame["amount"].round(2) == frame["amount"]).all()
    assert set(frame["is_fraud"].unique()) == {0, 1}


def test_time_order_period_and_size(frame: pd.DataFrame) -> None:
    times = frame["tx_time"]
    assert times.is_monotonic_increasing
    assert frame["tx_id"].is_monotonic_increasing  # ids in time order, as text
    start = pd.Timestamp("2018-04-01", tz="UTC")
    assert times.min() >= start and times.max() < start + 60 * DAY
    assert (times.dt.floor("D") - start).dt.days.nunique() == 60
    # Customers make Poisson(U(0, 4)) a day, ~97% of them inside the day: ~1.94 a day each.
    expected = 800 * 60 * 2 * 0.969
    assert 0.9 * expected < len(frame) < 1.1 * expected
    assert frame["customer_id"].nunique() > 750
    # A customer pays at the terminals near home only: ~50 of the 1,600 in reach, at most.
    per_customer = frame.groupby("customer_id")["terminal_id"].nunique()
    assert per_customer.max() < 120


def test_fraud_rate_and_every_scenario(small: RawDataset, frame: pd.DataFrame) -> None:
    assert 0.004 < small.fraud_rate < 0.015
    assert (frame["is_fraud"] == (frame["fraud_scenario"] > 0)).all()
    counts = small.scenario_counts
    assert all(n > 0 for n in counts.values()), counts
    assert sum(counts.values()) == int(frame["is_fraud"].sum())
    by_amount = frame[frame["fraud_scenario"] == 1]
    assert (by_amount["amount"] > 220).all()


def test_compromised_terminals_turn_fraudulent_for_a_while(frame: pd.DataFrame) -> None:
    # 2 per 10,000 terminals a day = 0.32 a day here: ~19 compromises in 60 days.
    hit = frame[frame["fraud_scenario"] == 2]
    assert 5 <= hit["terminal_id"].nunique() <= 40
    for terminal, rows in hit.groupby("terminal_id"):
        # All of a compromised terminal's transactions in its fraud period are frauds (or
        # overridden by a later scenario, 3): none is legitimate between its first and last.
        during = frame[
            (frame["terminal_id"] == terminal)
            & frame["tx_time"].between(rows["tx_time"].min(), rows["tx_time"].max())
        ]
        assert (during["is_fraud"] == 1).all(), terminal


def test_compromised_cards_spend_five_times_their_habit(frame: pd.DataFrame) -> None:
    stolen = frame[frame["fraud_scenario"] == 3]
    habit = frame[frame["is_fraud"] == 0].groupby("customer_id")["amount"].mean()
    ratio = stolen["amount"] / stolen["customer_id"].map(habit)
    assert 3.5 < ratio.median() < 7
    # 3 per 5,000 customers a day for 60 days: ~29 cards, a third of 14 days' spending each.
    assert 10 <= stolen["customer_id"].nunique() <= 50
    share = len(stolen) / frame[frame["customer_id"].isin(stolen["customer_id"])].shape[0]
    assert share < 0.5


def test_labels_of_frauds_are_known_sooner(frame: pd.DataFrame) -> None:
    delay = (frame["label_available_at"] - frame["tx_time"]).dt.total_seconds() / 86_400
    fraud, legit = delay[frame["is_fraud"] == 1], delay[frame["is_fraud"] == 0]
    assert fraud.between(1, 10).all() and legit.between(7, 30).all()
    assert fraud.mean() < 4 < 15 < legit.mean()
    assert (fraud <= 7).mean() > 0.9  # most frauds are known within a 7-day fraud_rate delay


def test_sizes_scale_and_a_bad_start_is_refused() -> None:
    tiny = generate_raw(RawConfig(customers=20, terminals=30, days=3, start="2024-02-28"))
    times = tiny.to_pandas()["tx_time"]
    assert times.min() >= pd.Timestamp("2024-02-28", tz="UTC")
    assert times.max() < pd.Timestamp("2024-03-02", tz="UTC")  # a leap year: 28, 29, 1
    with pytest.raises(ConfigError, match="start 'soon' is no date"):
        generate_raw(RawConfig(start="soon"))
    with pytest.raises(ConfigError, match="5 customers made no transaction in 3 days"):
        generate_raw(RawConfig(customers=5, terminals=1, days=3))
    with pytest.raises(ConfigError, match="customers must be at least 1"):
        generate_raw(RawConfig(customers=0))


@pytest.mark.parametrize("name", ["raw.parquet", "raw.csv", "raw.csv.gz"])
def test_files_read_back_and_validate_against_cards(tmp_path: Path, name: str) -> None:
    small = generate_raw(RawConfig(customers=100, terminals=200, days=20, seed=1))
    path = write_raw(small, tmp_path / "out" / name)
    assert [p.name for p in path.parent.iterdir()] == [name]  # no temporary file left
    clean = validate_frame(read_input(path), CARDS, source=name)
    columns = ["tx_id", "customer_id", "terminal_id", "tx_time", "amount", "is_fraud"]
    assert clean.column_names == columns  # the lake's order; the label times are not kept
    assert clean.num_rows == small.rows
    assert clean["tx_time"].equals(small.table["tx_time"])
    assert clean["terminal_id"].to_pylist() == small.table["terminal_id"].to_pylist()
    assert clean["is_fraud"].to_pylist() == small.table["is_fraud"].to_pylist()


def test_unknown_suffix_is_refused(small: RawDataset, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot tell the format"):
        write_raw(small, tmp_path / "raw.json")


def test_cards_spec_is_built_in_and_valid() -> None:
    assert BUILTIN_SPECS["cards"] is CARDS
    assert FeatureSpec.model_validate(CARDS.model_dump()) == CARDS  # the validators pass
    assert load_settings().feature_spec("cards") == CARDS
    assert CARDS.required_columns == [
        "tx_id",
        "customer_id",
        "terminal_id",
        "tx_time",
        "is_fraud",
        "amount",
    ]
    derived = {d.name: d for d in CARDS.derived}
    assert len(derived) == 17
    assert {d.delay for d in derived.values() if d.by == "terminal_id"} == {"7d"}
    assert derived["term_risk_30d"].lookback_s == 37 * 86_400


def test_lake_schema_carries_keys_as_text_and_no_derived_column() -> None:
    fields = {f.name: str(f.field_type) for f in transactions_schema(CARDS).fields}
    assert fields["terminal_id"] == "string" and fields["customer_id"] == "string"
    assert not {d.name for d in CARDS.derived} & set(fields)


def test_integer_keys_are_accepted_and_missing_keys_refused() -> None:
    raw = pd.DataFrame(
        {
            "tx_id": [1, 2, 3],
            "tx_time": ["2024-01-01T10:00:00Z"] * 3,
            "customer_id": [7, 8, 9],
            "terminal_id": [70, 80, 90],
            "amount": [1.0, 2.0, 3.0],
            "is_fraud": [0, 1, 0],
        }
    )
    clean = validate_frame(raw, CARDS)
    assert clean["terminal_id"].to_pylist() == ["70", "80", "90"]
    blank = raw.astype({"terminal_id": object})
    blank.loc[1, "terminal_id"] = None
    blank.loc[2, "terminal_id"] = ""
    with pytest.raises(ValidationError, match=r"'terminal_id': missing key value at rows 2, 3"):
        validate_frame(blank, CARDS)


def test_cli_refuses_sizes_without_raw_and_synthetic_options_with_it(tmp_path: Path) -> None:
    env = {"FRAUDOPS_HOME": str(tmp_path / "home")}
    runner = CliRunner()
    result = runner.invoke(cli_app, ["data", "generate", "--customers", "10"], env=env)
    assert result.exit_code != 0 and "add --raw" in result.output
    result = runner.invoke(cli_app, ["data", "generate", "--raw", "--rows", "10"], env=env)
    assert result.exit_code != 0 and "not --raw" in result.output
    out = tmp_path / "cards.csv"
    args = ["data", "generate", "--raw", "--customers", "30", "--terminals", "40", "--days", "5"]
    result = runner.invoke(cli_app, [*args, "--seed", "3", "--out", str(out), "--json"], env=env)
    assert result.exit_code == 0, result.output
    again = generate_raw(RawConfig(customers=30, terminals=40, days=5, seed=3))
    assert pd.read_csv(out, dtype={"tx_id": str})["tx_id"].tolist() == (
        again.table["tx_id"].to_pylist()
    )
    report = json.loads(result.stdout)
    assert report["rows"] == again.rows and report["spec"] == "cards"
    assert report["fraud_rate"] == pytest.approx(again.fraud_rate, abs=1e-6)
