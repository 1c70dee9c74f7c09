"""After-commit events: a writer of the lake announces what it committed to its subscribers.

The writers (the inference log's drainers, label ingestion) publish; the readers that follow
them (the dashboard's aggregates, the lake's maintenance) subscribe where the runtime is composed
(``fraudops.runtime``), so a writer never imports what reads after it. Best effort: a failing
subscriber logs a warning and never undoes, loses or blocks the commit, nor the next subscriber.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Committed:
    """``rows`` rows committed to ``spec``'s ``table`` (0: a batch that added nothing new;
    ``snapshot_id`` None when the writer does not know it)."""

    spec: str
    table: str
    rows: int
    snapshot_id: int | None = None


@dataclass(frozen=True)
class LabelCounts:
    """What became of a batch of label events (``labels.events.IngestReport``, counted)."""

    received: int = 0
    written: int = 0
    unknown: int = 0
    duplicates: int = 0
    conflicts: int = 0


@dataclass(frozen=True)
class WrittenLabel:
    """One label event as written: the transaction it labels, the label, when confirmed."""

    inference_id: str
    transaction_id: str | None
    is_fraud: bool
    confirmed_at: dt.datetime


@dataclass(frozen=True)
class LabelsCommitted(Committed):
    """A label ingestion, published even when it wrote nothing (its counts are recorded).

    ``batch`` None: nothing was written to ``labels``; ``days`` the prediction days its labels
    touched; ``lake`` the ingestion's open lake, which the subscribers write next to."""

    batch: str | None = None
    origin: str = ""
    at: dt.datetime | None = None
    days: Collection[dt.date] = field(default_factory=frozenset)
    counts: LabelCounts = field(default_factory=LabelCounts)
    # The events written, in order (the online feature store follows them: fraud_rate).
    labels: tuple[WrittenLabel, ...] = ()
    lake: Lake | None = field(default=None, compare=False, repr=False)


Subscriber = Callable[[Committed], object]


class CommitListeners:
    """The subscribers of one writer (or one process's writers), called in subscription order."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._closers: list[Callable[[], object]] = []

    def subscribe(
        self, subscriber: Subscriber, *, close: Callable[[], object] | None = None
    ) -> None:
        """Call ``subscriber`` after each commit; ``close`` (if any) when the listeners close."""
        self._subscribers.append(subscriber)
        if close is not None:
            self._closers.append(close)

    def __len__(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Committed) -> None:
        """Tell every subscriber; never raises (the commit is done whatever they do)."""
        for subscriber in self._subscribers:
            try:
                subscriber(event)
            except Exception as exc:
                log.warning(
                    "after commit to %s.%s: %s failed (%s: %s); the commit stands",
                    event.spec,
                    event.table,
                    getattr(subscriber, "__qualname__", subscriber),
                    type(exc).__name__,
                    exc,
                )

    def close(self) -> None:
        for closer in self._closers:
            try:
                closer()
            except Exception:  # a broken connection may fail to close: nothing to keep
                log.debug("closing a commit subscriber failed", exc_info=True)
        self._closers.clear()
