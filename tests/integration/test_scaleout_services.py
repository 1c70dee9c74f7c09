"""The shared set-up of issue 11: catalog and MLflow on PostgreSQL, warehouse and artifacts on S3.

A moto S3 server runs as a child process; two fresh PostgreSQL databases (the Iceberg catalog,
MLflow's tracking store) are dropped at the end. Then the CLI cycle, each command a process of its
own: generate → lake load → train (champion) → serve with the log on → traffic → log-writer →
labels → monitor run; and the refusals (a missing bucket, an unreachable store) that create nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import fresh_database, require_postgres, service_missing
from tests.serving_support import FRAUDOPS, Server, env_for, free_port
from tests.waiting import wait_for

BUCKET = "fraudops-lake"
SPEC = "transactions30"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on a free port, with the bucket the lake is told to use."""
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError:
        service_missing("moto's S3 server (pip install 'moto[server]', in the dev extra)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys())

        def bucket_made() -> bool:
            try:
                client.create_bucket(Bucket=BUCKET)
                return True
            except Exception:
                return False

        try:
            wait_for(bucket_made, "moto's S3 server", timeout=30, poll=0.2, process=process)
        except AssertionError:
            service_missing(f"moto's S3 server did not start on {endpoint}")
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def bucket_keys(endpoint: str, prefix: str = "") -> list[str]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **_keys())
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return keys


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    require_postgres()
    with fresh_database() as catalog, fresh_database() as tracking:
        yield catalog, tracking


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scaleout") / "home"


@pytest.fixture(scope="module")
def shared_env(s3_endpoint: str, databases: tuple[str, str]) -> dict[str, str]:
    """Settings of the shared set-up; the S3 credentials come from the usual AWS variables."""
    catalog, tracking = databases
    return {
        "FRAUDOPS_LAKE__CATALOG_URI": catalog,
        "FRAUDOPS_LAKE__WAREHOUSE": f"s3://{BUCKET}/warehouse",
        "FRAUDOPS_S3__ENDPOINT": s3_endpoint,
        "FRAUDOPS_MLFLOW__TRACKING_URI": tracking.replace("+psycopg2", ""),  # as a user writes it
        "FRAUDOPS_MLFLOW__ARTIFACT_LOCATION": f"s3://{BUCKET}/mlflow",
        # Small and quick: the set-up is under test here, not the model.
        "FRAUDOPS_TRAINING__XGBOOST__N_ESTIMATORS": "60",
        "FRAUDOPS_DATA__FRAUD_RATE": "0.03",
        "FRAUDOPS_MONITORING__MIN_SAMPLES": "50",
        **CREDENTIALS,
    }


def cli(
    home: Path, env: dict[str, str], *args: str, code: int = 0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*FRAUDOPS, *args],
        env=env_for(home, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == code, (
        f"fraudops {' '.join(args)} exited {done.returncode}, wanted {code}\n"
        f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done


def cli_json(home: Path, env: dict[str, str], *args: str, code: int = 0) -> Any:
    return json.loads(cli(home, env, *args, "--json", code=code).stdout)


def query(home: Path, env: dict[str, str], sql: str) -> list[dict[str, Any]]:
    return list(cli_json(home, env, "lake", "query", sql))


def test_train_serve_log_monitor_on_postgres_and_s3(
    home: Path, shared_env: dict[str, str], s3_endpoint: str, databases: tuple[str, str]
) -> None:
    data = home.parent / "data"
    cli_json(
        home, shared_env, "data", "generate", "--rows", "12000", "--seed", "5", "--out", str(data)
    )
    assert "transactions" in cli_json(home, shared_env, "lake", "init")["created"]
    assert (
        cli_json(home, shared_env, "lake", "load", str(data / "transactions.parquet"))["rows"]
        == 12000
    )

    trained = cli_json(home, shared_env, "train")
    assert trained["decision"] == "promoted"

    server = Server(home, **shared_env).start(timeout=120)
    try:
        traffic = cli_json(
            home, shared_env, "traffic", "--n", "300", "--url", server.url, "--seed", "9"
        )
    finally:
        server.stop()
    assert traffic["ok"] == 300 and traffic["errors"] == {}
    # Served by the champion, which the server found in PostgreSQL and loaded from S3.
    assert traffic["model_versions"] == {str(trained["version"]): 300}

    cli_json(home, shared_env, "log-writer", "--once")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=45)).isoformat()
    cli_json(home, shared_env, "labels", "simulate", "--now", later, "--seed", "3")
    # No Evidently HTML (~15 s here; tests/integration/test_monitoring_run.py draws it): the
    # run's drift summary goes to S3 the same way, as an MLflow artifact.
    monitored = cli_json(
        home, shared_env, "monitor", "run", "--no-alert", "--no-retrain", "--no-html"
    )

    # The lake's rows are on S3, read back through the PostgreSQL catalog (DuckDB over scans).
    counts = query(
        home,
        shared_env,
        "SELECT (SELECT count(*) FROM transactions) AS t, (SELECT count(*) FROM predictions) AS p,"
        " (SELECT count(*) FROM labels) AS l, (SELECT count(*) FROM monitoring_runs) AS m",
    )[0]
    assert counts["t"] == 12000 and counts["p"] == 300 and counts["l"] > 0 and counts["m"] == 1
    keys = bucket_keys(s3_endpoint, f"warehouse/{SPEC}/")
    for table in ("transactions", "predictions", "labels", "monitoring_runs"):
        data_files = [k for k in keys if k.startswith(f"warehouse/{SPEC}/{table}/data/")]
        assert data_files and all(k.endswith(".parquet") for k in data_files), table
    assert not (home / "lake").exists()  # nothing of the lake went to the local disk

    # The champion is in MLflow's PostgreSQL registry, its model on S3.
    import psycopg2

    with psycopg2.connect(databases[1].replace("+psycopg2", "")) as db, db.cursor() as cur:
        cur.execute(
            "SELECT a.version, mv.source FROM registered_model_aliases a JOIN model_versions mv"
            " ON mv.name = a.name AND mv.version = a.version WHERE a.alias = 'champion'"
        )
        rows = cur.fetchall()
    assert [str(v) for v, _ in rows] == [str(trained["version"])]
    source = rows[0][1]
    assert source == f"s3://{BUCKET}/mlflow/fraudops-training/{trained['run_id']}/artifacts/model"
    model_files = bucket_keys(s3_endpoint, source.removeprefix(f"s3://{BUCKET}/"))
    assert any(k.endswith("/fraudops.json") for k in model_files)

    # The monitoring run: drift over the 300 served rows, its row in the lake, its MLflow run.
    assert monitored["drift"] is not None and monitored["mlflow_run_id"]
    run_row = query(home, shared_env, "SELECT run_id, model_version FROM monitoring_runs")[0]
    assert run_row["run_id"] == monitored["run_id"]
    assert str(run_row["model_version"]) == str(trained["version"])
    reports = bucket_keys(s3_endpoint, "mlflow/fraudops-monitoring/")
    mine = [k for k in reports if monitored["mlflow_run_id"] in k]
    assert any(k.endswith("/reports/drift_summary.json") for k in mine), mine


def test_missing_bucket_is_named_and_never_created(
    home: Path, shared_env: dict[str, str], s3_endpoint: str
) -> None:
    env = {**shared_env, "FRAUDOPS_LAKE__WAREHOUSE": "s3://no-such-bucket/warehouse"}
    for args in (["lake", "init"], ["lake", "query", "SELECT 1 FROM transactions"]):
        done = cli(home, env, *args, code=1)
        assert "lake.warehouse" in done.stderr and "'no-such-bucket' does not exist" in done.stderr
        assert "secret" not in done.stderr.lower()
    artifacts = {**shared_env, "FRAUDOPS_MLFLOW__ARTIFACT_LOCATION": "s3://no-such-bucket/mlflow"}
    done = cli(home, artifacts, "models", "list", code=2)
    assert "mlflow.artifact_location" in done.stderr and "'no-such-bucket'" in done.stderr
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **_keys())
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == [BUCKET]


def test_unreachable_store_is_named(home: Path, shared_env: dict[str, str]) -> None:
    env = {**shared_env, "FRAUDOPS_S3__ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    done = cli(home, env, "lake", "query", "SELECT count(*) FROM transactions", code=1)
    assert "cannot reach bucket" in done.stderr and "s3.endpoint" in done.stderr
