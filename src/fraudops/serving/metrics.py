"""Prometheus metrics of one server process.

Request counts and latency are observed on the request path (children bound once: a labelled
lookup per request would cost more than the observation). The inference log's figures (queue
depth, written, dropped) and the lake's state are read at scrape time from the log's typed stats
(which include what its drainer last reported) and the server's last look at the lake. A spec
with derived features adds its online state's size (read at scrape time too).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from fraudops.inference_log.base import ProducerStats

if TYPE_CHECKING:
    from fraudops.features.online import OnlineHeld
    from fraudops.serving.lake_watch import LakeHealth

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0)


class _LogCollector(Collector):
    def __init__(
        self,
        read: Callable[[], ProducerStats],
        read_lake: Callable[[ProducerStats], LakeHealth] | None,
    ) -> None:
        self._read = read
        self._read_lake = read_lake

    def collect(self) -> Iterator[Any]:
        stats = self._read()
        queue = GaugeMetricFamily(
            "fraudops_log_queue_bytes", "Inference-log bytes waiting for the lake (spool/stream)."
        )
        queue.add_metric([], float(stats.queue_bytes or 0))
        yield queue
        records = GaugeMetricFamily(
            "fraudops_log_queue_records", "Inference-log records waiting for the lake."
        )
        records.add_metric([], float(stats.queue_records or 0))
        yield records
        written = CounterMetricFamily(
            "fraudops_log_records_written", "Prediction records committed to the lake."
        )
        written.add_metric([], float(stats.records_written or 0))
        yield written
        dropped = CounterMetricFamily(
            "fraudops_log_records_dropped",
            "Prediction records dropped by this process (log bound reached or log unwritable).",
        )
        dropped.add_metric([], float(stats.records_dropped))
        yield dropped
        yield from _drainer_metrics(stats)
        if stats.records_set_aside is not None:
            set_aside = CounterMetricFamily(
                "fraudops_log_records_rejected",
                "Log records the writer set aside (spool .rejected/): torn by a crash, corrupt, "
                "checksum mismatch (changed after they were written), invalid for the table.",
                labels=["reason"],
            )
            for reason, count in stats.records_set_aside.items():
                set_aside.add_metric([reason], float(count))
            yield set_aside
        if self._read_lake is None:
            return
        lake = self._read_lake(stats)
        if lake.available is not None:
            available = GaugeMetricFamily(
                "fraudops_lake_available",
                "1 while the lake's catalog and predictions table are there, 0 when missing "
                "(the log keeps the records meanwhile).",
            )
            available.add_metric([], float(lake.available))
            yield available
            stopped = GaugeMetricFamily(
                "fraudops_log_writing_stopped",
                "1 when the log writer stopped writing: predictions is another table.",
            )
            stopped.add_metric([], float(lake.writing_stopped))
            yield stopped


def _drainer_metrics(stats: ProducerStats) -> Iterator[Any]:
    """The log drainer's commits and the lake maintenance it runs, as it last reported them
    (names read by bench/soak.py)."""
    if stats.commits is not None:
        commits = CounterMetricFamily(
            "fraudops_log_commits", "Commits of the inference log to the lake (every writer)."
        )
        commits.add_metric([], float(stats.commits))
        yield commits
    if stats.commit_seconds_p50 is not None:
        latency = GaugeMetricFamily(
            "fraudops_log_commit_seconds",
            "The log writer's commit time over its last 200 commits, by quantile.",
            labels=["quantile"],
        )
        latency.add_metric(["0.5"], stats.commit_seconds_p50)
        latency.add_metric(["0.99"], stats.commit_seconds_p99 or stats.commit_seconds_p50)
        yield latency
    if stats.maintenance_runs is not None:
        runs = CounterMetricFamily(
            "fraudops_maintenance_runs", "Lake maintenance runs by the log writer."
        )
        runs.add_metric([], float(stats.maintenance_runs))
        yield runs
        removed = CounterMetricFamily(
            "fraudops_maintenance_files_removed",
            "Files the log writer's lake maintenance deleted (old metadata, orphans).",
        )
        removed.add_metric([], float(stats.maintenance_files_removed or 0))
        yield removed
    if stats.maintenance_last_run_at is not None:
        last = GaugeMetricFamily(
            "fraudops_maintenance_last_run_timestamp_seconds",
            "When the log writer's lake maintenance last ran (Unix time).",
        )
        last.add_metric([], stats.maintenance_last_run_at)
        yield last


class _OnlineCollector(Collector):
    """The online feature state's size (names read by bench/soak.py): the bound its sweeps
    keep is watched, not assumed. Nothing while the process holds no online store."""

    def __init__(self, read: Callable[[], OnlineHeld | None]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        held = self._read()
        if held is None:
            return
        figures = [
            (
                "fraudops_online_keys",
                "Key values (cards, terminals) the online state holds.",
                held.keys,
            ),
            ("fraudops_online_events", "Events the online state holds over all keys.", held.events),
        ]
        if held.ids is not None:
            figures.append(
                (
                    "fraudops_online_ids",
                    "Transactions in this process's id index (labels sent without keys).",
                    held.ids,
                )
            )
        for name, doc, value in figures:
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], float(value))
            yield gauge


class ServerMetrics:
    def __init__(
        self,
        read_log_stats: Callable[[], ProducerStats],
        read_lake: Callable[[ProducerStats], LakeHealth] | None = None,
        read_online: Callable[[], OnlineHeld | None] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fraudops_requests",
            "HTTP requests by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fraudops_request_latency_seconds",
            "Server-side latency of /v1/predict requests.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_latency = Histogram(
            "fraudops_model_latency_seconds",
            "Model time per scored micro-batch.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "fraudops_batch_rows",
            "Transactions scored together in one model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 512, 1024),
            registry=self.registry,
        )
        predictions = Counter(
            "fraudops_predictions",
            "Served predictions by class.",
            ["prediction"],
            registry=self.registry,
        )
        self.predicted_fraud = predictions.labels("fraud")
        self.predicted_legit = predictions.labels("legit")
        self.reloads = Counter(
            "fraudops_model_reloads", "Hot swaps of the served model.", registry=self.registry
        )
        self.model_version = Gauge(
            "fraudops_model_version", "The registry version being served.", registry=self.registry
        )
        self.registry.register(_LogCollector(read_log_stats, read_lake))
        if read_online is not None:
            self.registry.register(_OnlineCollector(read_online))
        self._bound: dict[tuple[str, int], Any] = {}

    def count(self, route: str, status: int) -> None:
        child = self._bound.get((route, status))
        if child is None:
            child = self._bound[(route, status)] = self.requests.labels(route, str(status))
        child.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
