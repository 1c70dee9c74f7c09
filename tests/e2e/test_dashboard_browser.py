"""The dashboard in real headless Chromium (Debian's ``chromium``, driven by Playwright) on a home
filled by a short simulation: every page opens without a console error with every chart drawn,
a filter changes what is shown, a CSV export downloads the rows shown, a lookup finds a served
prediction, a promote through the page moves ``champion`` and writes ``model_events``, lake
strings stay text. Saves the README's screenshots in docs/screenshots/.
"""

from __future__ import annotations

import csv
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving_support import FRAUDOPS, env_for, exited_stderr, free_port
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PAGES = ("inference", "drift", "features", "models", "labels", "alerts", "runs", "lookup")
SCENARIO = "small_drift"
# Small and quick (~2 minutes here): data drift from month 2, concept drift in month 3, retrains.
CONFIG = f"""
data:
  rows: 20000
  fraud_rate: 0.02
simulation:
  months: 3
  tx_per_day: 200
  evidence_report: false
  scenarios:
    {SCENARIO}:
      description: data drift from month 2, concept drift from month 3
      data_drift_month: 2
      concept_drift_month: 3
"""
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">'
READY = "body[data-ready='1']"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs it")
    base = tmp_path_factory.mktemp("dashboard-e2e")
    config = base / "fraudops.yaml"
    config.write_text(CONFIG)
    done = subprocess.run(
        [*FRAUDOPS, "--config", str(config), "simulate", "--scenario", SCENARIO, "--json"],
        cwd=base,
        env=env_for(base / "home"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    result["base"], result["config"] = base, config
    return result


@pytest.fixture(scope="module")
def dashboard(simulated: dict[str, Any]) -> Iterator[str]:
    port = free_port()
    base: Path = simulated["base"]
    process = subprocess.Popen(
        [
            *FRAUDOPS,
            "--config",
            str(simulated["config"]),
            "dashboard",
            "--home",
            str(base / "home"),
            "--simulation",
            SCENARIO,
            "--port",
            str(port),
        ],
        cwd=base,
        env=env_for(base / "home", FRAUDOPS_DASHBOARD__REFRESH_SECONDS="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_for(
            healthy,
            "the dashboard answers /healthz",
            timeout=60,
            poll=0.3,
            process=process,
            detail=lambda: exited_stderr(process),
        )
    except AssertionError:
        process.kill()
        raise
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(dashboard: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Tab:
    """One browser page with its console errors collected."""

    def __init__(self, browser: Any, url: str, downloads: bool = False) -> None:
        self.context = browser.new_context(
            viewport={"width": 1400, "height": 900}, accept_downloads=downloads
        )
        self.page = self.context.new_page()
        self.url = url
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Any:
        self.page.goto(self.url + path)
        self.page.wait_for_selector(READY, state="attached", timeout=30_000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, dashboard: str) -> Iterator[Tab]:
    opened = Tab(browser, dashboard, downloads=True)
    yield opened
    opened.close()


def _charts(page: Any) -> list[dict[str, str]]:
    charts: list[dict[str, str]] = page.eval_on_selector_all(
        ".chart",
        "nodes => nodes.map(n => ({key: n.dataset.chart, drawn: n.dataset.drawn,"
        " data: n.dataset.hasData, svg: String(n.querySelectorAll('.main-svg').length)}))",
    )
    return charts


def _kpi(page: Any, key: str) -> str:
    text: str = page.inner_text(f".kpi[data-kpi='{key}'] .value")
    return text


@pytest.mark.parametrize("name", PAGES)
def test_every_page_opens_with_every_chart_drawn_and_no_console_error(tab: Tab, name: str) -> None:
    page = tab.open(f"/{name}")
    assert page.inner_text("#error") == "" and page.is_hidden("#error")
    charts = _charts(page)
    if name != "lookup":
        assert charts, f"page {name} drew no chart"
    for chart in charts:
        assert chart["drawn"] == "1", (name, chart)
        assert chart["data"] == "1" and int(chart["svg"]) >= 1, (name, chart)
    assert page.query_selector_all(".kpi") or name == "lookup"
    assert tab.errors == [], tab.errors
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_a_filter_changes_what_is_shown(tab: Tab) -> None:
    page = tab.open("/drift")
    runs = int(_kpi(page, "runs"))
    rows = len(page.query_selector_all("[data-table='runs'] tbody tr"))
    assert runs == rows > 4
    first = page.inner_text("[data-table='runs'] tbody tr:last-child td:nth-child(2)")[:10]
    later = _next_week(first)
    with page.expect_navigation():
        page.fill("input[name=start]", later)
    page.wait_for_selector(READY, state="attached")
    assert f"start={later}" in page.url
    assert int(_kpi(page, "runs")) < runs
    assert len(page.query_selector_all("[data-table='runs'] tbody tr")) < rows
    assert tab.errors == []


def _next_week(day: str) -> str:
    from datetime import date, timedelta

    return (date.fromisoformat(day) + timedelta(days=8)).isoformat()


def test_a_csv_export_downloads_the_rows_shown(tab: Tab) -> None:
    page = tab.open("/features?feature=velocity_score")
    # The table shows 100 rows a page: read every page through its pager, as a person would.
    card = "[data-table='features']"
    shown: list[list[str]] = []
    while True:
        shown += page.eval_on_selector_all(
            f"{card} tbody tr",
            "rows => rows.map(r => [r.children[0].textContent, r.children[3].textContent])",
        )
        if page.is_hidden(f"{card} .pager") or page.is_disabled(f"{card} .pager .next"):
            break
        offset = page.get_attribute(card, "data-offset")
        page.click(f"{card} .pager .next")
        page.wait_for_selector(f"{card}:not([data-offset='{offset}'])")
    assert len(page.query_selector_all(f"{card} tbody tr")) <= 100
    count = page.inner_text(f"{card} .table-head .count")
    assert count == f"{len(shown):,} rows"
    with page.expect_download() as download:
        page.click("a[data-csv='features']")
    path = download.value.path()
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["run_id", "as_of", "model_version", "feature"]
    assert [[r[0], r[3]] for r in body] == shown and len(body) > 30


def test_a_lookup_finds_a_served_prediction(tab: Tab, simulated: dict[str, Any]) -> None:
    from fraudops.config import load_settings
    from fraudops.lake import Lake

    home = Path(simulated["home"])
    with Lake.open(load_settings(home=home), "transactions30") as lake:
        labels = lake.read_frame("labels", ["inference_id", "label"]).dropna()
        served = lake.read_frame(
            "predictions", ["inference_id", "transaction_id", "model_version", "probability"]
        )
    # A served prediction whose outcome came back: the page shows its label too.
    row = served.merge(labels, on="inference_id").iloc[len(labels) // 2]
    page = tab.open("/lookup")
    page.fill("input[name=id]", str(row["transaction_id"]))
    with page.expect_navigation():
        page.press("input[name=id]", "Enter")
    page.wait_for_selector(READY, state="attached")
    assert str(row["inference_id"]) in page.inner_text("#title")
    assert _kpi(page, "version") == f"v{row['model_version']}"
    assert _kpi(page, "label") == str(int(row["label"]))
    assert abs(float(_kpi(page, "probability")) - row["probability"]) < 1e-4
    features = page.query_selector_all("[data-table='features'] tbody tr")
    assert len(features) == 30
    assert tab.errors == []
    page.screenshot(path=str(SCREENSHOTS / "lookup.png"), full_page=True)


def test_lake_strings_stay_text_in_the_page(tab: Tab, simulated: dict[str, Any]) -> None:
    from fraudops.config import load_settings
    from fraudops.lake import Lake

    with Lake.open(load_settings(home=Path(simulated["home"])), "transactions30") as lake:
        lake.append(
            "alerts",
            [{"alert_id": "hostile", "run_id": "r", "subject": HOSTILE, "severity": "critical"}],
        )
    page = tab.open("/alerts")
    assert HOSTILE in page.inner_text("[data-table='feed']")
    assert page.query_selector("[data-table='feed'] img") is None
    assert page.evaluate("() => document.body.dataset.pwned") is None


def test_a_promote_through_the_page_moves_champion_and_writes_model_events(
    tab: Tab, simulated: dict[str, Any]
) -> None:
    from fraudops.config import load_settings
    from fraudops.registry.store import find_version
    from tests.governance_support import model_events

    settings = load_settings(home=Path(simulated["home"]))
    name = settings.registered_model_name("transactions30")
    before = find_version(settings.tracking_uri, name, "champion")
    assert before is not None
    page = tab.open("/models")
    target = page.eval_on_selector("#promote-version", "s => s.value")
    assert target and target != before.version
    page.click("#promote")
    page.fill("#confirm-reason", "browser test: promote by hand")
    page.click("#confirm-ok")
    page.wait_for_selector("#action-result:has-text('done')", timeout=30_000)
    page.wait_for_selector(READY, state="attached")
    after = find_version(settings.tracking_uri, name, "champion")
    assert after is not None and after.version == target
    events = model_events(settings, "transactions30")
    mine = events[events["reason"].fillna("").str.contains("browser test: promote by hand")]
    assert len(mine) == 1 and mine["version"].iloc[0] == target
    # The page follows the registry: the champion KPI shows the new version.
    page.wait_for_selector(f".kpi[data-kpi='champion'] .value:has-text('v{target}')")
    # And a roll back through the page puts the previous champion back.
    page.click("#rollback")
    page.fill("#confirm-reason", "browser test: roll back")
    with page.expect_response("**/api/actions/rollback") as answer:
        page.click("#confirm-ok")
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_selector(f".kpi[data-kpi='champion'] .value:has-text('v{before.version}')")
    back = find_version(settings.tracking_uri, name, "champion")
    assert back is not None and back.version == before.version
    assert tab.errors == []


def test_an_alert_is_acknowledged_through_the_page(tab: Tab, simulated: dict[str, Any]) -> None:
    from fraudops.config import load_settings
    from fraudops.lake import Lake

    note = "browser test: seen, retrain under way"
    page = tab.open("/alerts")
    waiting = len(page.query_selector_all("[data-table='feed'] button.ack"))
    page.click("[data-table='feed'] tbody tr:first-child button.ack")
    page.fill("#confirm-reason", note)
    with page.expect_response("**/api/actions/ack") as answer:
        page.click("#confirm-ok")
    assert answer.value.status == 200, answer.value.text()
    page.wait_for_selector("#action-result:has-text('done')")
    page.wait_for_selector(READY, state="attached")
    assert len(page.query_selector_all("[data-table='feed'] button.ack")) < waiting
    with Lake.open(load_settings(home=Path(simulated["home"])), "transactions30") as lake:
        alerts = lake.read_frame("alerts")
    acked = alerts[alerts["ack_note"] == note]
    assert len(acked) >= 1 and acked["acknowledged_by"].notna().all()
    assert tab.errors == []


def test_a_new_monitoring_run_shows_up_without_a_reload(
    tab: Tab, simulated: dict[str, Any]
) -> None:
    from datetime import timedelta

    import pandas as pd

    from fraudops.config import load_settings
    from fraudops.lake import Lake

    page = tab.open("/drift")
    runs = int(_kpi(page, "runs"))
    page.evaluate("() => { window.sameDocument = true; }")
    with Lake.open(load_settings(home=Path(simulated["home"])), "transactions30") as lake:
        last = lake.read_frame("monitoring_runs").sort_values("as_of").iloc[-1]
        row = {k: (None if pd.isna(v) else v) for k, v in last.to_dict().items()}
        row["run_id"] = "mon-live-test"
        row["as_of"] = last["as_of"] + timedelta(days=7)
        lake.append("monitoring_runs", [row])
    page.wait_for_selector(f".kpi[data-kpi='runs'] .value:has-text('{runs + 1}')", timeout=20_000)
    assert page.evaluate("() => window.sameDocument") is True  # redrawn, not reloaded
    assert page.query_selector("[data-table='runs'] a:has-text('mon-live-test')") is not None
    assert tab.errors == []
