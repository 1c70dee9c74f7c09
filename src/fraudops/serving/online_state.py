"""A server's online feature state: built from the settings, warmed from the lake's history,
kept up to date by every label event this process ingests (``POST /v1/labels``, or any other
ingestion through the runtime's commit listeners). Every served transaction updates it too
(serving/raw_path.py)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from fraudops.errors import FraudopsError
from fraudops.features.online import OnlineStore
from fraudops.features.served import warm_from_lake
from fraudops.lake.commits import Committed, LabelsCommitted

if TYPE_CHECKING:
    from fraudops.runtime import Runtime

log = logging.getLogger(__name__)


def start_online_store(runtime: Runtime) -> OnlineStore:
    """The configured store, warmed from the lake (a lake that cannot be read leaves it cold,
    with a warning), following this process's label ingestions."""
    store = runtime.online_store()
    started = time.perf_counter()
    try:
        with runtime.lake_factory()() as lake:
            rows = warm_from_lake(store, lake)
    except FraudopsError as exc:
        log.warning(
            "online features of spec %s start cold: the lake's history could not be read (%s)",
            runtime.spec.name,
            exc,
        )
    else:
        log.info(
            "online features of spec %s warmed from %d history rows in %.1f s",
            runtime.spec.name,
            rows,
            time.perf_counter() - started,
        )
    runtime.commits.subscribe(LabelFollower(store, runtime.spec.name))
    return store


class LabelFollower:
    """Passes each committed label event of one spec to the online store (fraud_rate)."""

    def __init__(self, store: OnlineStore, spec_name: str) -> None:
        self.store = store
        self.spec_name = spec_name

    def __call__(self, event: Committed) -> None:
        if not isinstance(event, LabelsCommitted) or event.spec != self.spec_name:
            return
        for label in event.labels:
            if label.transaction_id is not None:
                self.store.record_label(label.transaction_id, label.is_fraud, label.confirmed_at)
