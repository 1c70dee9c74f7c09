"""Label ingestion and ``POST /v1/labels``'s payload as a test calls them: from the settings,
over a lake the runtime opens (and closes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from fraudops.config import Settings
from fraudops.labels.ingest import IngestReport, LabelEvent, ingest_labels
from fraudops.runtime import Runtime
from fraudops.serving.labels_route import labels_route_payload
from fraudops.serving.lake_holder import LakeHolder
from fraudops.spec import FeatureSpec


def ingest(
    settings: Settings,
    spec: FeatureSpec | str | None,
    events: Sequence[Mapping[str, Any] | LabelEvent],
    **kwargs: Any,
) -> IngestReport:
    with Runtime(settings, _name(spec)) as runtime:
        return ingest_labels(runtime.lake(), events, **kwargs)


def chargebacks(
    served: Iterable[tuple[str, str]], fraud: Mapping[str, int], served_at: datetime
) -> list[dict[str, Any]]:
    """Each served (inference id, transaction id)'s true label, confirmed a day after serving."""
    confirmed = (served_at + timedelta(days=1)).isoformat()
    return [
        {"inference_id": i, "label": fraud[t], "confirmed_at": confirmed, "source": "chargeback"}
        for i, t in served
    ]


def post_labels(
    settings: Settings, spec: FeatureSpec | str | None, body: bytes, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    lake = LakeHolder(Runtime(settings, _name(spec)).lake_factory())
    try:
        return labels_route_payload(settings, lake, body, **kwargs)
    finally:
        lake.close()


def _name(spec: FeatureSpec | str | None) -> str | None:
    return spec.name if isinstance(spec, FeatureSpec) else spec
