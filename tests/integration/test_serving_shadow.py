"""Shadow scoring on a real registry, server app, spool, lake and monitoring run: the challenger
scores every request beside the champion, its score reaches the lake and never the client, and
monitoring compares the two on the same labelled rows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from fraudops import registry
from fraudops.config import Settings
from fraudops.inference_log.factory import open_producer
from fraudops.inference_log.records import PredictionRecord, encode, parse_line
from fraudops.inference_log.sink import PredictionSink
from fraudops.inference_log.writer import SpoolWriter
from fraudops.labels.window import read_window
from fraudops.lake import Lake
from fraudops.monitoring.backend import SHADOW_COLUMNS
from fraudops.monitoring.result import MonitoringResult
from fraudops.monitoring.run import run_monitoring
from fraudops.registry import LoadedModel
from fraudops.runtime import Runtime, mlflow_client
from fraudops.scoring import Scorer
from fraudops.serving.app import FraudopsASGI, create_app
from fraudops.serving.metrics import ServerMetrics
from fraudops.serving.model_holder import ModelHolder
from fraudops.serving.service import PredictionService
from fraudops.training.trainers import train_logreg
from tests.labels_support import chargebacks, ingest
from tests.registry_support import registry_client
from tests.serving_support import fraud_first, train_champion, transactions
from tests.waiting import wait_for

SPEC = "transactions30"
ALIAS = "challenger"
TX_SEED = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Versions 1 and 2 of the model, 2 a shallower forest of another seed (the gate decides
    which is champion: `_versions`). Two trainings of `train_champion` would give the same
    model twice, and a shadow that scores like the champion shows nothing."""
    from fraudops.training.pipeline import run_training

    settings = train_champion(tmp_path_factory.mktemp("shadow") / "home", times=1)
    other = settings.training.model_copy(
        update={
            "seed": 43,
            "xgboost": settings.training.xgboost.model_copy(
                update={"max_depth": 3, "n_estimators": 150}
            ),
        }
    )
    with Runtime(settings.model_copy(update={"training": other}), SPEC) as runtime:
        run_training(runtime.training_context(), raise_on_gate=False)
    return settings


def monitor(settings: Settings, **options: Any) -> MonitoringResult:
    with Runtime(settings, SPEC) as runtime:
        return run_monitoring(runtime.monitoring_context(), **options)


def _shadowing(settings: Settings, **serving: Any) -> Settings:
    update = {"shadow_alias": ALIAS, **serving}
    return settings.model_copy(update={"serving": settings.serving.model_copy(update=update)})


def _versions(settings: Settings) -> tuple[str, str]:
    """(champion, the other version)."""
    client = mlflow_client(settings)
    champion = registry.champion_version(client, settings, settings.registered_model_name(SPEC))
    assert champion in ("1", "2")
    return champion, "1" if champion == "2" else "2"


@pytest.fixture
def app(trained: Settings) -> Iterator[FraudopsASGI]:
    """The server app with its state started (ASGITransport runs no lifespan)."""
    registry.set_alias(
        mlflow_client(trained), trained, ALIAS, _versions(trained)[1], spec_name=SPEC
    )
    application = create_app(Runtime(_shadowing(trained), SPEC))
    application.state.start()
    try:
        yield application
    finally:
        application.state.stop()
        registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC)


async def _post(app: FraudopsASGI, bodies: list[Any], query: str = "") -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fraudops") as client:
        return await asyncio.gather(
            *(client.post(f"/v1/predict{query}", json=body) for body in bodies)
        )


def _drain(settings: Settings, ids: set[str]) -> pd.DataFrame:
    writer = SpoolWriter(settings, SPEC, open_lake=Runtime(settings, SPEC).lake_factory())
    try:
        writer.drain()
    finally:
        writer.close()
    spec = settings.feature_spec(SPEC)
    columns = [
        "inference_id",
        "transaction_id",
        "request_time",
        "model_version",
        "probability",
        "shadow_version",
        "shadow_probability",
        *spec.feature_names,
    ]
    with Lake.open(settings, SPEC) as lake:
        frame = lake.read_frame("predictions", columns=columns)
    frame = frame[frame["inference_id"].isin(ids)].reset_index(drop=True)
    assert len(frame) == len(ids)
    return frame


def _ids(responses: list[httpx.Response]) -> set[str]:
    assert [r.status_code for r in responses] == [200] * len(responses)
    return {res["inference_id"] for r in responses for res in r.json()["results"]}


def test_the_challenger_scores_beside_the_champion_and_monitoring_compares_them(
    trained: Settings, app: FraudopsASGI
) -> None:
    champion, challenger = _versions(trained)
    assert app.state.holder.shadow is not None
    assert app.state.holder.shadow.version == challenger
    served_at = datetime.now(UTC)
    # 600 transactions with every fraud of 4000 among them (the generator's rate is ~0.5%).
    spec = trained.feature_spec(SPEC)
    bodies, fraud = fraud_first(trained, 4000, seed=TX_SEED)
    bodies.sort(key=lambda b: str(b["transaction_id"]))
    # Singles in flight together (micro-batched), lists of 20, and explained requests.
    responses = asyncio.run(_post(app, [*bodies[:200], *_chunks(bodies[200:580], 20)]))
    responses += asyncio.run(_post(app, bodies[580:], query="?explain=true"))
    for response in responses:
        assert "shadow" not in response.text  # never returned to the client
        assert response.json()["model_version"] == champion
    ids = _ids(responses)
    assert len(ids) == 600
    app.state.stop()  # seals the spool segment

    rows = _drain(trained, ids)
    assert set(rows["model_version"]) == {champion}
    assert set(rows["shadow_version"]) == {challenger}
    X = rows[spec.feature_names].to_numpy(dtype=np.float64)
    expected = registry.load_model(
        trained, spec, challenger, client=registry_client(trained)
    ).model.predict_proba(X)
    np.testing.assert_allclose(rows["shadow_probability"], expected, rtol=1e-5, atol=1e-6)
    served = registry.load_model(
        trained, spec, champion, client=registry_client(trained)
    ).model.predict_proba(X)
    np.testing.assert_allclose(rows["probability"], served, rtol=1e-5, atol=1e-6)
    assert not np.allclose(rows["probability"], rows["shadow_probability"])

    # The generated data's own labels, confirmed a day after serving.
    later = served_at + timedelta(days=35)
    events = chargebacks(
        zip(rows["inference_id"], rows["transaction_id"], strict=True), fraud, served_at
    )
    assert ingest(trained, SPEC, events, now=later).written == 600

    result = monitor(trained, now=later, window_days=40, alert=False, html=False)
    perf = result.performance
    shadow = perf.shadow
    assert shadow is not None and perf.metrics is not None
    assert shadow.gate_metrics == trained.gate.champion_metrics and shadow.rows == 600
    [entry] = shadow.comparisons
    assert (entry.champion_version, entry.challenger_version) == (champion, challenger)
    assert entry.rows == perf.evaluated_rows == 600
    assert entry.positives == sum(fraud[b["transaction_id"]] for b in bodies) >= 10
    threshold = registry.load_model(
        trained, spec, challenger, client=registry_client(trained)
    ).manifest.threshold
    assert entry.challenger_threshold == pytest.approx(threshold)
    for side in ("champion", "challenger"):
        assert set(getattr(entry, side)) == {"roc_auc", "pr_auc", "recall", "precision", "f1"}
        assert all(value is not None for value in getattr(entry, side).values())
    y = rows["inference_id"].map({e["inference_id"]: e["label"] for e in events})
    assert entry.champion["roc_auc"] == pytest.approx(perf.metrics["roc_auc"])
    assert entry.champion["roc_auc"] == pytest.approx(roc_auc_score(y, rows["probability"]))
    assert entry.challenger["roc_auc"] == pytest.approx(
        roc_auc_score(y, rows["shadow_probability"])
    )
    flagged = rows["shadow_probability"] >= threshold
    assert entry.challenger["recall"] == pytest.approx((flagged & (y == 1)).sum() / y.sum())
    assert entry.better in ("champion", "challenger", "tie", "mixed")
    assert set(entry.by_metric) == set(trained.gate.champion_metrics)

    [summary] = result.summary()["shadow"]
    assert summary["challenger_version"] == challenger and summary["rows"] == 600
    run = mlflow_client(trained).get_run(result.mlflow_run_id)
    assert run.data.metrics["shadow_roc_auc"] == pytest.approx(entry.challenger["roc_auc"])
    assert run.data.metrics["shadow_champion_roc_auc"] == pytest.approx(entry.champion["roc_auc"])
    assert run.data.metrics["shadow_recall"] == pytest.approx(entry.challenger["recall"])


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def test_moving_the_alias_away_stops_shadow_scoring(trained: Settings, app: FraudopsASGI) -> None:
    champion, challenger = _versions(trained)
    bodies = transactions(trained, 40, seed=11)
    holder = app.state.holder
    before = _ids(asyncio.run(_post(app, bodies[:20])))

    registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC)
    assert holder.check() is False  # the champion did not move
    assert holder.shadow is None and holder.current is not None
    after = _ids(asyncio.run(_post(app, bodies[20:])))
    app.state.stop()

    rows = _drain(trained, before | after).set_index("inference_id")
    assert set(rows.loc[list(before), "shadow_version"]) == {challenger}
    assert rows.loc[list(after), "shadow_version"].isna().all()
    assert rows.loc[list(after), "shadow_probability"].isna().all()
    assert set(rows["model_version"]) == {champion}


def test_the_shadow_follows_its_alias_in_the_background(trained: Settings) -> None:
    champion, challenger = _versions(trained)
    settings = _shadowing(trained, reload_interval_s=0.05)
    spec = settings.feature_spec(SPEC)
    holder = ModelHolder(settings, spec, lambda: mlflow_client(settings))
    holder.start()
    try:
        assert holder.current is not None and holder.current.version == champion
        assert holder.shadow is None  # no alias yet
        registry.set_alias(mlflow_client(settings), settings, ALIAS, challenger, spec_name=SPEC)
        _wait(
            lambda: holder.shadow is not None and holder.shadow.version == challenger,
            "the shadow follows the alias to the challenger",
        )
        assert holder.describe_shadow() == {
            "alias": ALIAS,
            "model_version": challenger,
            "run_id": holder.shadow.run_id,
            "threshold": holder.shadow.threshold,
            "kind": holder.shadow.loaded.manifest.kind,
        }
        registry.set_alias(mlflow_client(settings), settings, ALIAS, champion, spec_name=SPEC)
        _wait(lambda: holder.shadow is None, "no shadow: the alias names the champion")
        registry.set_alias(mlflow_client(settings), settings, ALIAS, challenger, spec_name=SPEC)
        _wait(lambda: holder.shadow is not None, "the shadow is back")
        registry.remove_alias(mlflow_client(settings), settings, ALIAS, spec_name=SPEC)
        _wait(lambda: holder.shadow is None, "no shadow once the alias is gone")
        assert holder.current.version == champion and holder.reloads == 0
    finally:
        holder.stop()
        registry.remove_alias(mlflow_client(settings), settings, ALIAS, spec_name=SPEC)
    # Without serving.shadow_alias an alias changes nothing.
    registry.set_alias(mlflow_client(trained), trained, ALIAS, challenger, spec_name=SPEC)
    try:
        plain = ModelHolder(trained, spec, lambda: mlflow_client(trained))
        plain.check()
        assert plain.current is not None and plain.shadow is None
    finally:
        registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC)


def test_the_champion_alias_cannot_be_moved_or_removed_as_a_shadow_alias(
    trained: Settings,
) -> None:
    from fraudops.errors import FraudopsError

    with pytest.raises(FraudopsError, match="promote"):
        registry.set_alias(mlflow_client(trained), trained, "champion", "1", spec_name=SPEC)
    with pytest.raises(FraudopsError, match="cannot be removed"):
        registry.remove_alias(mlflow_client(trained), trained, "champion", spec_name=SPEC)
    with pytest.raises(FraudopsError, match="no version or alias '99'"):
        registry.set_alias(mlflow_client(trained), trained, ALIAS, "99", spec_name=SPEC)
    assert registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC) is False


def test_a_shadow_that_cannot_load_leaves_the_champion_serving(trained: Settings) -> None:
    champion, _ = _versions(trained)
    client = mlflow_client(trained)
    name = trained.registered_model_name(SPEC)
    broken = client.create_model_version(
        name, source=(trained.home_dir / "nowhere" / "model").as_uri()
    )
    registry.set_alias(mlflow_client(trained), trained, ALIAS, str(broken.version), spec_name=SPEC)
    application = create_app(Runtime(_shadowing(trained), SPEC))
    application.state.start()
    try:
        holder = application.state.holder
        assert holder.current is not None and holder.current.version == champion
        assert holder.shadow is None and "missing" in (holder.shadow_error or "")
        ids = _ids(asyncio.run(_post(application, transactions(trained, 10, seed=5))))
    finally:
        application.state.stop()
        registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC)
        client.delete_model_version(name, str(broken.version))
    rows = _drain(trained, ids)
    assert rows["shadow_version"].isna().all() and rows["probability"].notna().all()


def test_a_shadow_that_fails_to_score_costs_only_its_fields(trained: Settings) -> None:
    """A shadow model that raises on every call (trained on 3 features, handed 30)."""
    spec = trained.feature_spec(SPEC)
    holder = ModelHolder(trained, spec, lambda: mlflow_client(trained))
    holder.check()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 1).astype(int)
    model = train_logreg(
        X,
        y,
        params=trained.training.logreg.model_copy(update={"smote": False}),
        seed=0,
        feature_names=["a", "b", "c"],
        spec_name=SPEC,
    ).with_threshold(0.5)
    loaded = LoadedModel(model, model.manifest, "broken", "77", None, "")
    holder.shadow = Scorer(loaded, trained.serving.risk_tiers)
    log = open_producer(trained, SPEC)
    service = PredictionService(trained, spec, holder, log, ServerMetrics(dict))
    bodies = transactions(trained, 12, seed=9)

    async def serve() -> list[bytes]:
        return await asyncio.gather(
            *(service.predict(_json(body)) for body in bodies),
            service.predict(_json(bodies[:3]), explain=True),
        )

    try:
        answers = asyncio.run(serve())
    finally:
        log.close()
    assert len(answers) == 13 and service.shadow_failures >= 2
    assert service.records_logged == 15
    ids = {r["inference_id"] for a in answers for r in _loads(a)["results"]}
    rows = _drain(trained, ids)
    assert rows["shadow_version"].isna().all() and rows["shadow_probability"].isna().all()


def test_the_monitoring_window_is_pushed_into_the_scan_with_its_exact_bounds(
    trained: Settings,
) -> None:
    spec = trained.feature_spec(SPEC)
    end = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)
    start = end - timedelta(days=7)
    at = {
        "before": start - timedelta(microseconds=1),
        "start": start,
        "inside": start + timedelta(microseconds=1),
        "end": end,
        "after": end + timedelta(microseconds=1),
    }
    rows = [
        parse_line(
            encode(
                PredictionRecord(
                    inference_id=f"bound-{key}",
                    request_time=when,
                    model_name="m",
                    model_version="2",
                    run_id=None,
                    transaction_id=None,
                    customer_id=None,
                    amount=None,
                    features=dict.fromkeys(spec.feature_names, 0.0),
                    probability=0.1,
                    prediction=0,
                    threshold=0.5,
                    risk_tier="low",
                    latency_ms=1.0,
                    model_latency_ms=1.0,
                    shadow_version="1" if key == "inside" else None,
                    shadow_probability=0.2 if key == "inside" else None,
                )
            )
        )
        for key, when in at.items()
    ]
    with PredictionSink(trained, SPEC, open_lake=Runtime(trained, SPEC).lake_factory()) as sink:
        assert sink.commit(rows).written == 5
    with Lake.open(trained, SPEC) as lake:
        window = read_window(lake, spec, start=start, end=end, columns=SHADOW_COLUMNS).predictions
    assert sorted(window["inference_id"]) == ["bound-end", "bound-inside"]
    inside = window.set_index("inference_id").loc["bound-inside"]
    assert (inside["shadow_version"], inside["shadow_probability"]) == ("1", 0.2)
    assert str(window["request_time"].dt.tz) == "UTC"


def _json(body: Any) -> bytes:
    import orjson

    return orjson.dumps(body)


def _loads(body: bytes) -> Any:
    import orjson

    return orjson.loads(body)


def _wait(condition: Callable[[], bool], what: str) -> None:
    wait_for(condition, f"the holder: {what}", timeout=15, poll=0.05)


# ---- promotion through shadow scoring (retrain.promote_via: shadow) ---------------------------


def _promote_via_shadow(settings: Settings, **retrain: Any) -> Settings:
    return _shadowing(settings).model_copy(
        update={
            "retrain": settings.retrain.model_copy(update={"promote_via": "shadow", **retrain}),
            "monitoring": settings.monitoring.model_copy(update={"min_positives": 10}),
        }
    )


def _serve_label_monitor(settings: Settings, seed: int) -> Any:
    """600 transactions (all 4,000's frauds among them) through the shadowing app, their real
    labels a day later, and a monitoring run a month on."""
    bodies, fraud = fraud_first(settings, 4000, seed=seed)
    application = create_app(Runtime(_shadowing(settings), SPEC))
    application.state.start()
    served_at = datetime.now(UTC)
    try:
        ids = _ids(asyncio.run(_post(application, _chunks(bodies, 50))))
    finally:
        application.state.stop()
    rows = _drain(settings, ids)
    later = served_at + timedelta(days=35)
    events = chargebacks(
        zip(rows["inference_id"], rows["transaction_id"], strict=True), fraud, served_at
    )
    ingest(settings, SPEC, events, now=later)
    return monitor(settings, now=later, window_days=40, alert=False, html=False)


def test_a_challenger_that_wins_on_live_traffic_is_promoted_and_one_that_loses_is_dropped(
    trained: Settings,
) -> None:
    from fraudops.monitoring.retraining import retrain_after_monitoring, settle_shadow
    from fraudops.registry.events import ModelEvent
    from fraudops.training.pipeline import run_training
    from tests.governance_support import model_events

    strong, _ = _versions(trained)
    # A deliberately weak model (two stumps), registered past lowered floors, made champion.
    weak_settings = trained.model_copy(
        update={
            "gate": trained.gate.model_copy(update={"min_roc_auc": 0.0, "min_pr_auc": 0.0}),
            "training": trained.training.model_copy(
                update={
                    "xgboost": trained.training.xgboost.model_copy(
                        update={"n_estimators": 2, "max_depth": 1, "early_stopping_rounds": 0}
                    )
                }
            ),
        }
    )
    with Runtime(weak_settings, SPEC) as runtime:
        weak = run_training(runtime.training_context(), raise_on_gate=False).version
    assert weak is not None
    client = mlflow_client(trained)
    name = trained.registered_model_name(SPEC)

    def make_champion(version: str, before: str) -> None:
        event = ModelEvent(SPEC, name, "manual_promote", "manual", "test", version, None, before)
        with Runtime(trained, SPEC) as rt:
            registry.move_champion(trained, client, SPEC, version, event=event, lake=rt.lake())

    make_champion(weak, strong)
    registry.set_alias(mlflow_client(trained), trained, ALIAS, strong, spec_name=SPEC)
    try:
        settings = _promote_via_shadow(trained)
        result = _serve_label_monitor(settings, seed=21)
        assert result.performance.shadow is not None
        [entry] = result.performance.shadow.comparisons
        assert (entry.champion_version, entry.challenger_version) == (weak, strong)
        assert entry.better == "challenger", entry

        # Too few frauds yet: the verdict waits, and no retrain replaces the shadow meanwhile.
        patient = settings.model_copy(
            update={"monitoring": settings.monitoring.model_copy(update={"min_positives": 10**6})}
        )
        with Runtime(patient, SPEC) as runtime:
            waiting = settle_shadow(
                runtime.monitoring_context(),
                champion=weak,
                performance=result.performance,
                monitoring_run_id=result.run_id,
                as_of=result.as_of,
            )
        assert waiting is not None and waiting.status == "waiting" and waiting.comparison is None
        assert "metrics" not in waiting.to_dict()
        assert registry.alias_version(client, name, ALIAS) == strong

        with Runtime(settings, SPEC) as runtime:
            monitoring = runtime.monitoring_context()
            check = retrain_after_monitoring(monitoring, result, html_report=False)
        assert check.shadow is not None and check.shadow.status == "promoted"
        assert check.to_dict()["shadow"]["metrics"]["shadow"] is True
        assert registry.champion_version(client, trained, name) == strong
        assert registry.alias_version(client, name, ALIAS) is None
        event = model_events(trained, SPEC).iloc[-1]
        assert (event["event_type"], event["trigger"], event["version"]) == (
            "promoted",
            "shadow",
            strong,
        )
        assert event["champion_before"] == weak and event["monitoring_run_id"] == result.run_id
        metrics = json.loads(event["metrics"])
        assert metrics["challenger"]["roc_auc"] > metrics["champion"]["roc_auc"]

        # The other way round: the weak model in shadow loses and is dropped.
        registry.set_alias(mlflow_client(trained), trained, ALIAS, weak, spec_name=SPEC)
        result = _serve_label_monitor(settings, seed=22)
        with Runtime(settings, SPEC) as runtime:
            verdict = settle_shadow(
                runtime.monitoring_context(),
                champion=strong,
                performance=result.performance,
                monitoring_run_id=result.run_id,
                as_of=result.as_of,
            )
        assert verdict is not None and verdict.status == "dropped"
        assert registry.champion_version(client, trained, name) == strong
        assert registry.alias_version(client, name, ALIAS) is None
        assert model_events(trained, SPEC).iloc[-1]["event_type"] == "shadow_dropped"
    finally:
        registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC)
        if registry.champion_version(client, trained, name) != strong:
            make_champion(strong, weak)


def test_a_retrain_winner_goes_to_shadow_scoring_instead_of_straight_to_champion(
    trained: Settings,
) -> None:
    from fraudops.monitoring.retraining import retrain

    champion, _ = _versions(trained)
    client = mlflow_client(trained)
    name = trained.registered_model_name(SPEC)
    settings = _promote_via_shadow(trained, min_holdout_positives=5)
    # Judged on floors only (no champion comparison), so the gate's verdict is "promoted".
    settings = settings.model_copy(
        update={"gate": settings.gate.model_copy(update={"champion_metrics": []})}
    )
    result = _serve_label_monitor(settings, seed=23)
    try:
        with Runtime(settings, SPEC) as runtime:
            trained_result = retrain(runtime.monitoring_context(), now=result.as_of, reason="test")
        assert trained_result.decision == "shadowed" and trained_result.exit_code == 0
        assert registry.alias_version(client, name, ALIAS) == trained_result.version
        assert registry.champion_version(client, trained, name) == champion  # not yet
        kinds = read_events_of(trained, trained_result.run_id)
        assert kinds == ["registered", "shadowed"]
        holder = ModelHolder(
            _shadowing(trained), trained.feature_spec(SPEC), lambda: mlflow_client(trained)
        )
        holder.check()
        assert holder.shadow is not None and holder.shadow.version == trained_result.version
    finally:
        registry.remove_alias(mlflow_client(trained), trained, ALIAS, spec_name=SPEC)


def read_events_of(settings: Settings, run_id: str) -> list[str]:
    from tests.governance_support import model_events

    events = model_events(settings, SPEC)
    return events[events["run_id"] == run_id]["event_type"].tolist()
