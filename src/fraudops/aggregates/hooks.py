"""The aggregates' subscribers to the commits of ``predictions`` and ``labels``: best effort.

Subscribed where the runtime is composed (runtime.py), told by the writers through
``lake.commits``: the writers never import this package.

A failing refresh logs a warning and never loses or blocks what was committed: the watermark
did not move, so the next refresh (the next batch, ``fraudops lake aggregates``) catches up.
A lake created before the aggregate tables existed is left alone (``fraudops lake init`` adds
them) and said once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import asdict
from types import TracebackType

import pandas as pd

from fraudops.aggregates import labels as label_aggregates
from fraudops.aggregates import predictions as prediction_aggregates
from fraudops.aggregates.predictions import RefreshReport
from fraudops.lake.catalog import Lake
from fraudops.lake.commits import Committed, LabelCounts, LabelsCommitted
from fraudops.lake.schemas import LABEL_INGESTS, LABEL_STATS, LABELS, PREDICTION_STATS

log = logging.getLogger(__name__)

_said_missing: set[tuple[str, str]] = set()


def _present(lake: Lake, table: str) -> bool:
    if lake.exists(table):
        return True
    key = (lake.settings.catalog_uri, f"{lake.namespace}.{table}")
    if key not in _said_missing:
        _said_missing.add(key)
        log.warning(
            "aggregates: %s.%s does not exist, not kept up to date (run `fraudops lake init "
            "--spec %s` to add it, then `fraudops lake aggregates --rebuild`)",
            lake.namespace,
            table,
            lake.spec.name,
        )
    return False


class StatsRefresher:
    """Subscribed to an inference-log drainer: refreshes ``prediction_stats`` after each commit
    that wrote rows."""

    def __init__(self, open_lake: Callable[[], Lake]) -> None:
        self.open_lake = open_lake  # Runtime.lake_factory: opened on the first refresh
        self._lake: Lake | None = None

    def after_commit(self, event: Committed | None = None) -> RefreshReport | None:
        """Fold the new predictions in; None (and a warning) when that failed, or when
        ``event`` says nothing new was written."""
        if event is not None and event.rows == 0:
            return None
        try:
            if self._lake is None:
                self._lake = self.open_lake()
            if not _present(self._lake, PREDICTION_STATS):
                return None
            return prediction_aggregates.refresh(self._lake)
        except Exception as exc:  # never let the aggregates stop the log
            log.warning(
                "aggregates: prediction_stats refresh failed (%s: %s); the predictions are "
                "committed, the next refresh catches up",
                type(exc).__name__,
                exc,
            )
            self.close()
            return None

    def close(self) -> None:
        if self._lake is not None:
            try:
                self._lake.close()
            except Exception:  # a broken connection may fail to close: nothing to keep
                log.debug("closing the aggregates lake failed", exc_info=True)
            self._lake = None

    def __enter__(self) -> StatsRefresher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def on_labels_committed(event: Committed) -> None:
    """The subscriber to label ingestion: record its counts in ``label_ingests`` and recompute
    the prediction days its labels touched in ``label_stats``."""
    if isinstance(event, LabelsCommitted) and event.lake is not None and event.at is not None:
        after_label_ingest(
            event.lake, event.counts, event.batch, origin=event.origin, at=event.at, days=event.days
        )


def after_label_ingest(
    lake: Lake,
    counts: LabelCounts,
    batch: str | None,
    *,
    origin: str,
    at: dt.datetime,
    days: Collection[dt.date],
) -> None:
    """Record the ingestion's counts in ``label_ingests`` and recompute the prediction days its
    labels touched in ``label_stats``. ``batch`` None: nothing was written to ``labels``."""
    days = {d for d in days if not pd.isna(d)}
    try:
        if _present(lake, LABEL_INGESTS):
            lake.append(
                LABEL_INGESTS,
                [
                    {
                        "batch": batch or f"none-{uuid.uuid4().hex[:8]}",
                        "ingested_at": at,
                        "origin": origin,
                        **asdict(counts),
                    }
                ],
            )
    except Exception as exc:
        log.warning("aggregates: could not record the label ingestion's counts: %s", exc)
    try:
        if batch is None or not _present(lake, LABEL_STATS):
            return
        hint = None
        current = lake.table(LABELS).current_snapshot()
        summary = current.summary if current is not None else None
        if (
            summary is not None
            and summary.additional_properties.get("fraudops.labels.batch") == batch
        ):
            hint = label_aggregates.LabelsHint(current.snapshot_id, frozenset(days))  # type: ignore[union-attr]
        label_aggregates.refresh(lake, hint)
    except Exception as exc:  # the labels are committed: the next refresh catches up
        log.warning(
            "aggregates: label_stats refresh failed (%s: %s); the labels are committed, the "
            "next refresh catches up",
            type(exc).__name__,
            exc,
        )


def refresh_all(lake: Lake, *, rebuild: bool = False) -> list[RefreshReport]:
    """``prediction_stats`` then ``label_stats``, refreshed (or rebuilt): the CLI's work."""
    if rebuild:
        return [prediction_aggregates.rebuild(lake), label_aggregates.rebuild(lake)]
    return [prediction_aggregates.refresh(lake), label_aggregates.refresh(lake)]
