"""The dashboard's web app over a real lake: auth (401/403), refusing off loopback, 422/404 on
bad input, CSV = the JSON table, lake strings escaped, no path out of the reports folder, the
small tables read once per snapshot."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fraudops.config import Settings, load_settings
from fraudops.dashboard.app import create_app
from fraudops.dashboard.auth import CSRF_HEADER, SESSION_COOKIE, check_exposure
from fraudops.dashboard.store import small_table
from fraudops.errors import ConfigError
from fraudops.lake import Lake
from fraudops.runtime import Runtime
from tests.serving_support import FRAUDOPS, env_for

pytestmark = pytest.mark.integration

SPEC = "transactions30"
SCRIPT = "<script>alert('x')</script>"
START = datetime(2027, 1, 1, tzinfo=UTC)


def _run(i: int, home: Path, **extra: Any) -> dict[str, Any]:
    run_id = f"mon-2027010{i}-test"
    folder = home / "reports" / SPEC / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "drift_summary.json").write_text("{}")
    (folder / "data_drift.html").write_text("<html><body>report</body></html>")
    as_of = START + timedelta(days=7 * i)
    row: dict[str, Any] = {
        "run_id": run_id,
        "as_of": as_of,
        "started_at": as_of,
        "finished_at": as_of,
        "model_name": f"fraudops-{SPEC}",
        "model_version": "1",
        "window_start": as_of - timedelta(days=7),
        "window_end": as_of,
        "n_current": 1000,
        "n_labelled": 400 * i,
        "drifted_count": i,
        "drifted_share": i / 30,
        "max_psi": 0.1 * i,
        "roc_auc": 0.9 - 0.01 * i,
        "pr_auc": 0.7,
        "recall": 0.6,
        "precision": 0.8,
        "data_drift_detected": i > 1,
        "model_drift_detected": False,
        "status": "drift" if i > 1 else "ok",
        "report_path": str(folder / "drift_summary.json"),
        "summary": json.dumps({"performance": {"baseline_roc_auc": 0.95}}),
    }
    row.update(extra)
    return row


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    settings = load_settings(home=home)
    runs = [_run(i, home) for i in (1, 2, 3)]
    # A run whose recorded report path points outside the reports folder.
    outside = home / "elsewhere"
    outside.mkdir(parents=True)
    (outside / "secret.json").write_text('{"secret": 1}')
    runs.append(_run(4, home, status=SCRIPT, report_path=str(outside / "secret.json")))
    with Lake.open(settings, SPEC) as lake:
        lake.init()
        lake.append("monitoring_runs", runs)
        lake.append(
            "feature_drift",
            [
                {
                    "run_id": r["run_id"],
                    "feature": f,
                    "kind": "numeric",
                    "psi": 0.05 * n,
                    "ks_statistic": 0.01 * n,
                    "severity": "WARNING" if n > 2 else "NORMAL",
                    "drifted": n > 2,
                    "as_of": r["as_of"],
                }
                for r in runs
                for n, f in enumerate(("transaction_amount", "velocity_score", "customer_age"))
            ],
        )
        lake.append(
            "alerts",
            [
                {
                    "alert_id": f"alert-{i}",
                    "run_id": runs[i]["run_id"],
                    "created_at": runs[i]["as_of"],
                    "channel": "log",
                    "severity": "warning",
                    "subject": SCRIPT if i == 0 else f"drift in {i} features",
                    "body": "body",
                    "delivered": i != 2,
                    "attempts": 1,
                    "error": None if i != 2 else "smtp down",
                }
                for i in range(4)
            ],
        )
        lake.append(
            "model_events",
            [
                {
                    "event_id": uuid.uuid4().hex,
                    "event_time": START + timedelta(days=10),
                    "spec": SPEC,
                    "model_name": f"fraudops-{SPEC}",
                    "version": "1",
                    "event_type": kind,
                    "trigger": "train",
                    "champion_after": "1",
                    "reason": "first",
                    "metrics": json.dumps({"roc_auc": 0.95, "pr_auc": 0.8}),
                }
                for kind in ("registered", "promoted")
            ],
        )
    return home


def _client(home: Path, **dashboard: Any) -> TestClient:
    settings = load_settings(home=home)
    if dashboard:
        settings = settings.model_copy(
            update={"dashboard": settings.dashboard.model_copy(update=dashboard)}
        )
    app = create_app(Runtime(settings, SPEC), warm_up=False)
    return TestClient(app, base_url="http://127.0.0.1:8090")


@pytest.fixture(scope="module")
def open_client(home: Path) -> TestClient:
    return _client(home)


@pytest.fixture(scope="module")
def locked(home: Path) -> TestClient:
    from pydantic import SecretStr

    return _client(home, secret=SecretStr("a-long-dashboard-secret"))


def _sign_in(client: TestClient, user: str = "ana") -> str:
    answer = client.post(
        "/login",
        content=f"user={user}&secret=a-long-dashboard-secret&next=/models",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/models"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = client.get("/models")
    assert page.status_code == 200 and "ana" in page.text
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_loopback_without_secret_is_open_and_pages_answer(open_client: TestClient) -> None:
    for page in ("drift", "features", "models", "alerts", "runs", "lookup"):
        shell = open_client.get(f"/{page}")
        assert shell.status_code == 200, page
        assert '<link rel="preload" href="/vendor/plotly.min.js"' in shell.text
        assert "cdn" not in shell.text.lower()
        data = open_client.get(f"/api/page/{page}")
        assert data.status_code == 200, (page, data.text)
        assert data.json()["page"] == page
    drift = open_client.get("/api/page/drift").json()
    assert [k["value"] for k in drift["kpis"] if k["key"] == "runs"] == [4]
    assert {c["key"]: c["has_data"] for c in drift["charts"]}["drifted_count"]
    markers = {c["key"]: c["markers"] for c in drift["charts"]}["roc_auc"]
    assert [m["kind"] for m in markers] == ["promoted"]
    plotly = open_client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert b"plotly.js (basic - minified)" in plotly.content[:200]  # make installed it


def test_with_a_secret_requests_need_the_session_and_actions_the_csrf_token(
    locked: TestClient,
) -> None:
    assert locked.get("/api/page/drift").status_code == 401
    assert locked.get("/api/state").status_code == 401
    page = locked.get("/drift?start=2027-01-01", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/drift%3Fstart%3D2027-01-01"
    wrong = locked.post(
        "/login",
        content="user=eve&secret=guess",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )
    assert wrong.status_code == 401 and SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    body = {"version": "1", "reason": "test"}
    assert locked.post("/api/actions/promote", json=body).status_code == 401
    csrf = _sign_in(locked)
    assert locked.get("/api/page/drift").status_code == 200
    assert locked.post("/api/actions/promote", json=body).status_code == 403
    bad = locked.post("/api/actions/promote", json=body, headers={CSRF_HEADER: "forged"})
    assert bad.status_code == 403
    for action, payload in (
        ("promote", {"version": "1"}),
        ("rollback", {}),
        ("ack", {"alert_id": "alert-1"}),
        ("promote", {"version": "1", "reason": "   "}),
    ):
        answer = locked.post(f"/api/actions/{action}", json=payload, headers={CSRF_HEADER: csrf})
        assert answer.status_code == 422, (action, answer.text)
        assert "reason" in json.dumps(answer.json()["detail"])
    # A tampered cookie is no session.
    locked.cookies.set(SESSION_COOKIE, locked.cookies[SESSION_COOKIE][:-2] + "xx")
    assert locked.get("/api/page/drift").status_code == 401
    locked.cookies.clear()


def test_open_it_answers_only_a_loopback_host(home: Path) -> None:
    client = _client(home)
    for host in ("127.0.0.1:8090", "localhost", "[::1]:8090"):
        assert client.get("/api/state", headers={"host": host}).status_code == 200, host
    # DNS rebinding: another site's name pointed at 127.0.0.1 keeps its own Host header, also
    # one that merely starts like a loopback address.
    for host in ("evil.example:8090", "127.attacker.com:8090", "localhost.attacker.com"):
        rebound = client.get("/drift", headers={"host": host})
        assert rebound.status_code == 400 and 'name="csrf-token"' not in rebound.text, host
        action = client.post(
            "/api/actions/ack",
            json={"alert_id": "alert-1", "reason": "rebound"},
            headers={"host": host, CSRF_HEADER: "x"},
        )
        assert action.status_code == 400, host


def test_signing_out_revokes_the_cookie_on_the_server(home: Path) -> None:
    from pydantic import SecretStr

    client = _client(home, secret=SecretStr("a-long-dashboard-secret"))
    _sign_in(client)
    kept = client.cookies[SESSION_COOKIE]  # what a thief (or the browser's cache) kept
    assert client.get("/api/page/drift").status_code == 200
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.set(SESSION_COOKIE, kept)
    assert client.get("/api/page/drift").status_code == 401
    assert client.get("/models", follow_redirects=False).status_code == 303  # to /login


def test_sign_in_attempts_are_limited_per_client_with_a_back_off(home: Path) -> None:
    from pydantic import SecretStr

    client = _client(
        home,
        secret=SecretStr("a-long-dashboard-secret"),
        sign_in_free_attempts=3,
        sign_in_backoff_s=1.0,
    )
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    statuses = [
        client.post("/login", content=f"user=eve&secret=guess{i}", headers=form).status_code
        for i in range(6)
    ]
    assert statuses == [401, 401, 401, 401, 429, 429]
    # While it waits even the right secret is refused, with when to come back.
    right = client.post("/login", content="user=eve&secret=a-long-dashboard-secret", headers=form)
    assert right.status_code == 429 and right.headers["retry-after"] == "1"
    assert "try again in 1 s" in right.text
    time.sleep(1.1)
    _sign_in(client)  # after the back-off the right secret works, and resets the count
    assert client.app.state.auth.limiter.wait_s("testclient") == 0  # type: ignore[attr-defined]


def test_bodies_over_the_cap_are_refused_before_they_are_parsed(open_client: TestClient) -> None:
    big = b'{"alert_id": "alert-1", "reason": "' + b"x" * 70_000 + b'"}'
    answer = open_client.post(
        "/api/actions/ack", content=big, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and "65536 bytes" in answer.json()["detail"][0]["msg"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap holds on the stream too
        yield big[:40_000]
        yield big[40_000:]

    streamed = open_client.post("/login", content=chunks())
    assert streamed.status_code == 413


def test_off_loopback_without_a_secret_it_refuses_to_start(home: Path, tmp_path: Path) -> None:
    settings: Settings = load_settings(home=home)
    with pytest.raises(ConfigError, match="refusing"):
        check_exposure(settings, "0.0.0.0")
    check_exposure(settings, "127.0.0.1")
    done = subprocess.run(
        [*FRAUDOPS, "dashboard", "--host", "0.0.0.0", "--port", "1"],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "refusing to run the dashboard on 0.0.0.0" in done.stderr
    check_exposure(load_settings(home=home, dashboard={"secret": "s" * 20}), "0.0.0.0")
    check_exposure(load_settings(home=home, serving={"tokens": ["t" * 20]}), "0.0.0.0")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("start=yesterday", "start"),
        ("end=2027-13-01", "end"),
        ("start=2027-02-01&end=2027-01-01", "end"),
        ("spec=nope", "spec"),
        ("version=%3Cb%3E", "version"),
        ("feature=a%20b", "feature"),
        ("run_id=../../etc", "run_id"),
        (f"start={'1' * 300}", "start"),
    ],
)
def test_bad_query_values_are_422_naming_the_parameter(
    open_client: TestClient, query: str, parameter: str
) -> None:
    answer = open_client.get(f"/api/page/drift?{query}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["query", parameter]
    assert open_client.get(f"/api/page/features/table/features.csv?{query}").status_code == 422


def test_unknown_pages_and_tables_are_404(open_client: TestClient) -> None:
    assert open_client.get("/nope").status_code == 404
    assert open_client.get("/api/page/nope").status_code == 404
    assert open_client.get("/api/page/drift/table/nope.csv").status_code == 404
    assert open_client.get("/api/lookup?id=" + "x" * 500).status_code == 422
    assert open_client.get("/api/lookup").status_code == 422


def _csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


@pytest.mark.parametrize(
    ("page", "table", "query"),
    [
        ("drift", "runs", ""),
        ("drift", "runs", "start=2027-01-10"),
        ("features", "features", "feature=velocity_score&end=2027-01-20"),
        ("alerts", "feed", ""),
        ("models", "events", ""),
    ],
)
def test_csv_equals_the_json_table(
    open_client: TestClient, page: str, table: str, query: str
) -> None:
    data = open_client.get(f"/api/page/{page}?{query}").json()
    shown = next(t for t in data["tables"] if t["key"] == table)
    answer = open_client.get(f"/api/page/{page}/table/{table}.csv?{query}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    columns, rows = _csv_rows(answer.text)
    assert columns == shown["columns"]
    assert rows == [["" if v is None else str(v) for v in row] for row in shown["rows"]]
    assert rows  # the fixture has rows for every one of these
    if "start=2027-01-10" in query:
        assert len(rows) == 3  # the filter left out the first run


def test_lake_strings_reach_the_page_escaped(open_client: TestClient) -> None:
    feed = open_client.get("/api/page/alerts").json()["tables"][0]
    assert SCRIPT in {row[feed["columns"].index("subject")] for row in feed["rows"]}
    answer = open_client.get("/api/page/alerts")
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    # Query values echoed in the shell are autoescaped.
    shell = open_client.get(f"/lookup?id={SCRIPT}&feature={SCRIPT}")
    assert shell.status_code == 200
    assert SCRIPT not in shell.text and "&lt;script&gt;" in shell.text
    # The CSV quotes spreadsheet formulas.
    from fraudops.dashboard.routes.deps import csv_text

    assert csv_text(["a"], [["=HYPERLINK(1)"], [-1.5]]) == "a\r\n'=HYPERLINK(1)\r\n-1.5\r\n"


def test_reports_are_served_only_from_the_reports_folder(
    open_client: TestClient, home: Path
) -> None:
    runs = open_client.get("/api/page/drift").json()["tables"][0]
    ids = [row[0] for row in runs["rows"]]
    good = next(i for i in ids if i.startswith("mon-20270101"))
    report = open_client.get(f"/reports/{good}/data_drift.html")
    assert report.status_code == 200 and "report" in report.text
    assert report.headers["content-security-policy"] == "sandbox allow-scripts"
    detail = open_client.get(f"/api/page/runs?run_id={good}").json()
    urls = {row[0]: row[2] for row in detail["tables"][1]["rows"]}
    assert urls["data_drift.html"] == f"/reports/{good}/data_drift.html"
    for path in (
        f"/reports/{good}/..%2F..%2F..%2Felsewhere%2Fsecret.json",
        f"/reports/{good}/%2E%2E",
        f"/reports/{good}/../../elsewhere/secret.json",
        "/reports/mon-20270104-test/secret.json",  # its report_path lies outside
        "/reports/no-such-run/drift_summary.json",
    ):
        answer = open_client.get(path)
        assert answer.status_code == 404, path
        assert '"secret": 1' not in answer.text


def test_small_tables_are_read_once_per_snapshot(open_client: TestClient, home: Path) -> None:
    runtime: Runtime = open_client.app.state.runtime  # type: ignore[attr-defined]
    first = small_table(runtime, "alerts")
    assert small_table(runtime, "alerts") is first  # same snapshot: from memory
    before = open_client.get("/api/state").json()
    with Lake.open(load_settings(home=home), SPEC) as lake:
        lake.append(
            "alerts",
            [{"alert_id": "alert-new", "run_id": "r", "created_at": START, "severity": "info"}],
        )
    after = open_client.get("/api/state").json()
    assert after["token"] != before["token"]
    assert after["snapshots"]["alerts"] != before["snapshots"]["alerts"]
    assert after["snapshots"]["monitoring_runs"] == before["snapshots"]["monitoring_runs"]
    fresh = small_table(runtime, "alerts")
    assert fresh is not first and "alert-new" in set(fresh["alert_id"])
    # Opening the dashboard created no MLflow store behind the user's back.
    assert not (home / "mlflow").exists()


def test_a_home_without_a_lake_is_a_clear_503_and_nothing_is_created(tmp_path: Path) -> None:
    empty = tmp_path / "empty-home"
    client = _client(empty)
    assert client.get("/drift").status_code == 200  # the shell; its data names the problem
    for url in ("/api/page/drift", "/api/state", "/api/lookup?id=abc"):
        answer = client.get(url)
        assert answer.status_code == 503, url
        assert "fraudops lake init" in answer.json()["detail"]
    assert not empty.exists()
