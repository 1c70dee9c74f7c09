"""The lake on a real SQL catalog: SQLite under home, and the machine's PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy

from fraudops.config import Settings, load_settings
from fraudops.errors import ConfigError, LakeError, ValidationError
from fraudops.lake import TABLES, Lake, load_file
from fraudops.lake.catalog import LakeMissingError, conform
from fraudops.lake.loader import with_lineage
from fraudops.lake.query import needed_columns, run_query
from fraudops.lake.schemas import describe_schema, table_schema
from fraudops.lake.validation import validate_frame
from fraudops.progress import Reporter
from fraudops.spec import TRANSACTIONS30
from tests.unit.test_lake_validation import transactions30_frame, ulb_frame

pytestmark = pytest.mark.integration

UTC = dt.UTC


@pytest.fixture(params=["sqlite", "postgresql"])
def lake_settings(request: pytest.FixtureRequest, home: Path) -> Settings:
    if request.param == "sqlite":
        return load_settings(home=home)
    uri = request.getfixturevalue("pg_database")
    # The database lives for the session: a catalog name per test keeps the tests apart.
    return load_settings(
        home=home, lake={"catalog_uri": uri, "catalog_name": f"t_{uuid.uuid4().hex[:10]}"}
    )


@pytest.fixture
def lake(lake_settings: Settings) -> Iterator[Lake]:
    with Lake.open(lake_settings) as opened:
        opened.init()
        yield opened


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _snapshot(lake: Lake) -> tuple[int, list[dict[str, object]]]:
    """What a user sees: the count and the `lake query` result over the table."""
    rows = run_query(
        lake,
        "SELECT transaction_id, transaction_amount, is_fraud FROM transactions "
        "ORDER BY transaction_id",
    ).to_pylist()
    return lake.count("transactions"), rows


# ---- catalog -------------------------------------------------------------------------------


def test_init_is_idempotent_and_creates_every_table_with_its_schema(
    lake_settings: Settings,
) -> None:
    with Lake.open(lake_settings) as lake:
        assert lake.init() == TABLES
        assert lake.init() == []
    with Lake.open(lake_settings) as again:  # a new process: same catalog, nothing to create
        assert again.init() == []
        for name in TABLES:
            live = again.table(name)
            assert describe_schema(live.schema()) == describe_schema(
                table_schema(name, TRANSACTIONS30)
            ), name
            assert again.count(name) == 0
        (day,) = again.table("predictions").spec().fields
        assert str(day.transform) == "day"
        assert again.table("predictions").schema().find_field(day.source_id).name == "request_time"
        assert again.table("labels").spec().is_unpartitioned()


def test_catalog_lives_where_the_settings_say(lake_settings: Settings, home: Path) -> None:
    with Lake.open(lake_settings) as lake:
        lake.init()
    sqlite_file = home / "lake" / "catalog.db"
    assert (home / "lake" / "warehouse").is_dir()
    if lake_settings.lake.catalog_uri is None:
        assert sqlite_file.is_file()
        uri = f"sqlite:///{sqlite_file}"
    else:
        assert not sqlite_file.exists()
        uri = lake_settings.lake.catalog_uri
    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as con:
            rows = con.execute(
                sqlalchemy.text(
                    "SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = :c"
                ),
                {"c": lake_settings.lake.catalog_name},
            ).all()
    finally:
        engine.dispose()
    assert sorted(rows) == sorted(("transactions30", name) for name in TABLES)


def test_one_namespace_per_spec(lake_settings: Settings, tmp_path: Path) -> None:
    with Lake.open(lake_settings) as t30, Lake.open(lake_settings, "ulb") as ulb:
        t30.init()
        ulb.init()
        load_file(t30, _csv(transactions30_frame(40), tmp_path / "t30.csv"))
        ulb_path = tmp_path / "ulb.parquet"
        ulb_frame(25).to_parquet(ulb_path)
        load_file(ulb, ulb_path)
        assert (t30.count("transactions"), ulb.count("transactions")) == (40, 25)
        assert "Amount" in ulb.table("transactions").schema().column_names
        assert "Amount" not in t30.table("transactions").schema().column_names


def test_table_before_init_and_unknown_names(lake_settings: Settings) -> None:
    with Lake.open(lake_settings) as lake:
        with pytest.raises(LakeError, match="run `fraudops lake init --spec transactions30`"):
            lake.table("transactions")
        with pytest.raises(LakeError, match="unknown lake table 'nope'"):
            lake.count("nope")
    with pytest.raises(ConfigError, match="unknown spec 'nope'"):
        Lake.open(lake_settings, "nope")


def test_init_refuses_a_table_that_no_longer_matches_its_spec(home: Path) -> None:
    spec = {
        "timestamp_column": "ts",
        "label_column": "y",
        "features": [{"name": "x"}, {"name": "n", "dtype": "int"}],
    }
    with Lake.open(load_settings(home=home, specs={"mini": spec}), "mini") as lake:
        assert lake.init() == TABLES
    changed = dict(spec, features=[{"name": "x", "dtype": "int"}, {"name": "z"}])
    with (
        Lake.open(load_settings(home=home, specs={"mini": changed}), "mini") as lake,
        pytest.raises(LakeError) as caught,
    ):
        lake.init()
    message = str(caught.value)
    assert "mini.transactions does not match spec 'mini'" in message
    assert "columns the spec adds: z" in message
    assert "columns the spec no longer has: n" in message
    assert "changed columns: x (double -> long)" in message


def test_unreachable_catalog_is_a_lake_error(home: Path) -> None:
    settings = load_settings(
        home=home, lake={"catalog_uri": "postgresql+psycopg2://postgres:secret@127.0.0.1:1/nothing"}
    )
    with pytest.raises(
        LakeError,
        match=r"lake catalog postgresql\+psycopg2://postgres:\*\*\*"
        r"@127.0.0.1:1/nothing failed",
    ):
        Lake.open(settings).init()


# ---- append / read --------------------------------------------------------------------------


def _prediction(i: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "inference_id": f"inf-{i}",
        "request_time": dt.datetime(2025, 3, 1 + i % 3, 12, 30),  # naive: taken as UTC
        "model_name": "fraudops-transactions30",
        "model_version": "3",
        "transaction_id": f"tx-{i}",
        "amount": 10.0 * i,
        "transaction_amount": 10.0 * i,
        "customer_age": 30 + i,
        "probability": i / 10,
        "prediction": int(i > 5),
        "threshold": 0.5,
        "risk_tier": "low",
        "latency_ms": 1.5,
    }
    row.update(extra)
    return row


def test_append_and_read_round_trip(lake: Lake) -> None:
    assert lake.append("predictions", [_prediction(i) for i in range(10)]) == 10
    assert lake.count("predictions") == 10

    table = lake.read("predictions")
    assert table.schema.field("request_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("customer_age").type == pa.int64()
    (first,) = lake.read_frame("predictions", row_filter="inference_id = 'inf-4'").to_dict(
        "records"
    )
    assert first["request_time"] == pd.Timestamp("2025-03-02 12:30", tz="UTC")
    assert first["customer_age"] == 34
    assert np.isnan(first["shadow_probability"])  # absent optional column: null

    flagged = lake.read(
        "predictions", columns=["inference_id", "probability"], row_filter="prediction = 1"
    )
    assert flagged.column_names == ["inference_id", "probability"]
    assert sorted(flagged["inference_id"].to_pylist()) == [f"inf-{i}" for i in range(6, 10)]
    # Three request days, three partitions.
    files = lake.table("predictions").inspect.files()
    assert files.num_rows == 3


def test_append_refuses_bad_rows_and_writes_nothing(lake: Lake) -> None:
    lake.append("predictions", [_prediction(0)])
    with pytest.raises(LakeError, match="has no column\\(s\\) 'probabilty'"):
        lake.append("predictions", [_prediction(1, probabilty=0.3)])
    with pytest.raises(LakeError, match="required column 'inference_id' is null at row\\(s\\) 2"):
        lake.append("predictions", [_prediction(1), _prediction(2, inference_id=None)])
    with pytest.raises(LakeError, match=r"column 'customer_age' .* cannot be stored as int64"):
        lake.append("predictions", [_prediction(1, customer_age="old")])
    with pytest.raises(LakeError, match=r"filter .probability >>> 2. does not parse at character"):
        lake.read("predictions", row_filter="probability >>> 2")
    assert lake.append("predictions", []) == 0
    assert lake.count("predictions") == 1


def test_labels_join_predictions_in_a_query(lake: Lake) -> None:
    lake.append("predictions", [_prediction(i) for i in range(6)])
    now = dt.datetime.now(UTC)
    lake.append(
        "labels",
        pd.DataFrame(
            {
                "event_id": ["e1", "e2", "e3"],
                "inference_id": ["inf-1", "inf-2", "inf-2"],
                "label": [1, 0, 1],
                "confirmed_at": [now, now, now + dt.timedelta(hours=1)],
                "source": ["chargeback", "review", "review"],
            }
        ),
    )
    result = run_query(
        lake,
        """
        WITH latest AS (
            SELECT inference_id, arg_max(label, confirmed_at) AS label
            FROM labels GROUP BY inference_id)
        SELECT p.inference_id, l.label FROM predictions p JOIN latest l USING (inference_id)
        ORDER BY 1""",
    )
    assert result.to_pylist() == [
        {"inference_id": "inf-1", "label": 1},
        {"inference_id": "inf-2", "label": 1},
    ]


def test_query_errors_name_the_problem(lake: Lake) -> None:
    with pytest.raises(LakeError, match='Referenced column "nope" not found'):
        run_query(lake, "SELECT nope FROM transactions")
    with pytest.raises(LakeError, match="Table with name nothing does not exist"):
        run_query(lake, "SELECT * FROM nothing")
    with pytest.raises(LakeError, match="empty query"):
        run_query(lake, "  ")


# ---- loading files ----------------------------------------------------------------------------


def test_load_csv_and_parquet(lake: Lake, tmp_path: Path) -> None:
    frame = transactions30_frame(120)
    frame["comment"] = "ignored"
    reporter = Reporter()
    report = load_file(lake, _csv(frame, tmp_path / "a.csv"), progress=reporter)
    assert report.rows == 120 and report.mode == "append" and report.spec == "transactions30"
    assert report.columns_ignored == ["comment"]
    assert report.fraud_rate == pytest.approx(frame["is_fraud"].mean())
    assert {"Reading", "Validating", "Writing"} <= set(reporter.timings)

    second = transactions30_frame(30, seed=1, start=1000)
    parquet = tmp_path / "b.parquet"
    second.to_parquet(parquet)
    assert load_file(lake, parquet).rows == 30
    assert lake.count("transactions") == 150
    assert run_query(lake, "SELECT count(*) AS n FROM transactions").to_pylist() == [{"n": 150}]

    summary = run_query(
        lake,
        "SELECT _batch_id, count(*) AS n, min(_loaded_at) AS at "
        "FROM transactions GROUP BY 1 ORDER BY n",
    ).to_pylist()
    assert [row["n"] for row in summary] == [30, 120]
    assert summary[1]["_batch_id"] == report.batch_id
    assert summary[0]["at"].tzinfo is not None
    (back,) = lake.read_frame("transactions", row_filter="transaction_id = 'tx-001010'").to_dict(
        "records"
    )
    sent = second.to_dict("records")[10]
    assert back["transaction_amount"] == pytest.approx(sent["transaction_amount"])
    assert back["transaction_timestamp"] == sent["transaction_timestamp"]


def test_ulb_load_generates_ids_from_the_file(lake_settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "ulb.parquet"
    ulb_frame(50).to_parquet(path)
    with Lake.open(lake_settings, "ulb") as lake:
        lake.init()
        report = load_file(lake, path)
        ids = lake.read("transactions", columns=["transaction_id"])["transaction_id"].to_pylist()
        prefix = report.batch_id.split("-")[0]  # the file's sha256, first 8 hex digits
        assert sorted(ids) == sorted(f"{prefix}-{i}" for i in range(1, 51))
        with pytest.raises(ValidationError, match="50 of its 50 ids are already in ulb"):
            load_file(lake, path)  # the same file twice
        assert lake.count("transactions") == 50


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda f: f.drop(columns=["credit_limit"]), "missing column(s): 'credit_limit'"),
        (
            lambda f: f.assign(
                customer_age=f["customer_age"].astype(object).where(f.index != 4, "forty")
            ),
            "column 'customer_age': not a number at row 5",
        ),
        (
            lambda f: f.assign(transaction_hour=f["transaction_hour"].where(f.index != 9, 25)),
            "column 'transaction_hour': out of range [0, 23] at row 10 (value 25)",
        ),
        (
            lambda f: f.assign(is_fraud=f["is_fraud"].where(f.index != 0, 3)),
            "label must be 0 or 1 at row 1",
        ),
    ],
    ids=["missing-column", "wrong-type", "out-of-range", "bad-label"],
)
def test_bad_file_is_refused_and_the_table_is_unchanged(
    lake: Lake, tmp_path: Path, spoil: Callable[[pd.DataFrame], pd.DataFrame], expected: str
) -> None:
    load_file(lake, _csv(transactions30_frame(60), tmp_path / "good.csv"))
    before = _snapshot(lake)
    # Fresh ids: the only fault is the spoiled column.
    bad = spoil(transactions30_frame(60, seed=3, start=500))
    with pytest.raises(ValidationError) as caught:
        load_file(lake, _csv(bad, tmp_path / "bad.csv"))
    assert expected in str(caught.value)
    assert str(tmp_path / "bad.csv") in str(caught.value)
    assert _snapshot(lake) == before


def test_unreadable_inputs_are_refused(lake: Lake, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"this is not parquet")
    (tmp_path / "data.xlsx").write_bytes(b"PK")
    cases = {
        tmp_path / "absent.csv": "no such file",
        tmp_path: "not a file",
        garbage: "cannot read " + str(garbage) + " as Parquet",
        tmp_path / "data.xlsx": "unknown file format (expected .csv",
    }
    for path, expected in cases.items():
        with pytest.raises(ValidationError) as caught:
            load_file(lake, path)
        assert expected in str(caught.value), path
    assert lake.count("transactions") == 0


def test_duplicate_ids_are_refused_and_replace_overwrites(lake: Lake, tmp_path: Path) -> None:
    first = _csv(transactions30_frame(80), tmp_path / "first.csv")
    load_file(lake, first)
    before = _snapshot(lake)
    overlapping = _csv(transactions30_frame(40, seed=5, start=70), tmp_path / "overlap.csv")
    with pytest.raises(ValidationError) as caught:
        load_file(lake, overlapping)
    message = str(caught.value)
    assert "10 of its 40 ids are already in transactions30.transactions" in message
    assert "'tx-000070'" in message and "replace mode" in message
    assert _snapshot(lake) == before

    report = load_file(lake, overlapping, mode="replace")
    assert report.mode == "replace" and report.rows == 40
    count, rows = _snapshot(lake)
    assert count == 40
    assert [r["transaction_id"] for r in rows] == [f"tx-{i:06d}" for i in range(70, 110)]
    # One commit per load: the replace is a delete and an append in one catalog update.
    table = lake.table("transactions")
    batch_of = {
        s.summary.additional_properties.get("fraudops.batch-id")
        for s in table.snapshots()[1:]
        if s.summary is not None
    }
    assert batch_of == {report.batch_id}


def test_concurrent_appends_all_land(lake_settings: Settings) -> None:
    with Lake.open(lake_settings) as lake:
        lake.init()

    def writer(worker: int) -> None:
        with Lake.open(lake_settings) as own:  # one catalog connection per writer, like processes
            for batch in range(5):
                rows = [_prediction(i, inference_id=f"w{worker}-b{batch}-{i}") for i in range(4)]
                own.append("predictions", rows)

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(writer, range(3)))
    with Lake.open(lake_settings) as lake:
        ids = lake.read("predictions", columns=["inference_id"])["inference_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 3 * 5 * 4


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT count(*) FROM predictions", []),
        (
            "SELECT avg(probability) FROM predictions WHERE prediction = 1",
            ["probability", "prediction"],
        ),
        ("SELECT * FROM predictions", None),
        ("SELECT probability * 2 FROM predictions", None),
        ("DESCRIBE predictions", None),
    ],
)
def test_queries_scan_only_the_columns_they_may_use(sql: str, expected: list[str] | None) -> None:
    columns = [f.name for f in table_schema("predictions", TRANSACTIONS30).fields]
    assert needed_columns(sql, columns) == (columns if expected is None else expected)


# ---- a lake is never created behind the user's back ---------------------------------------------


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_opening_a_lake_creates_nothing(home: Path) -> None:
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        with pytest.raises(LakeMissingError, match=r"catalog\.db does not exist.*lake init"):
            lake.table("predictions")
        with pytest.raises(LakeMissingError):
            lake.exists("transactions")
    assert _tree(home) == []  # no catalog file, no warehouse folder
    with Lake.open(settings) as lake:
        assert lake.init() == TABLES  # `lake init` does create them
    assert (home / "lake" / "catalog.db").is_file()


def test_a_missing_warehouse_is_not_recreated(home: Path) -> None:
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        lake.init()
    warehouse = home / "lake" / "warehouse"
    warehouse.rename(home / "warehouse.away")
    with Lake.open(settings) as lake, pytest.raises(LakeMissingError, match="warehouse"):
        lake.table("transactions")
    assert not warehouse.exists()


def test_a_write_after_the_lake_moved_away_recreates_no_folder(home: Path, tmp_path: Path) -> None:
    settings = load_settings(home=home)
    with Lake.open(settings) as lake:
        lake.init()
        table = lake.table("transactions")  # connected, the table loaded: then it goes away
        (home / "lake").rename(tmp_path / "lake.away")
        clean = validate_frame(transactions30_frame(5), TRANSACTIONS30)
        rows = conform(with_lineage(clean, TRANSACTIONS30, "0" * 64, "b"), table.schema(), "t")
        with pytest.raises(FileNotFoundError, match="does not exist"):
            table.append(rows)
    assert not (home / "lake").exists()  # pyiceberg's FileIO would have made the folders


def test_an_empty_catalog_database_is_not_initialised_by_opening_it(home: Path) -> None:
    catalog = home / "empty.db"
    sqlite3.connect(catalog).close()  # a database file with no Iceberg catalog in it
    (home / "lake" / "warehouse").mkdir(parents=True)
    settings = load_settings(home=home, lake={"catalog_uri": f"sqlite:///{catalog}"})
    with Lake.open(settings) as lake, pytest.raises(LakeMissingError, match="no Iceberg catalog"):
        lake.table("transactions")
    with sqlite3.connect(catalog) as con:
        assert con.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_a_recreated_table_has_another_uuid(lake: Lake) -> None:
    first = lake.table_uuid("predictions")
    assert lake.table_uuid("predictions") == first
    lake.catalog.drop_table(lake.identifier("predictions"))
    assert lake.init() == ["predictions"]
    assert lake.table_uuid("predictions") != first
