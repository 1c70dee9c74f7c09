"""``POST /v1/labels``: the HTTP face of label ingestion (``labels.ingest``), its status codes
and FastAPI's error shape, over the one lake client a server keeps for it (``lake_holder``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson

from fraudops.config import Settings
from fraudops.errors import FraudopsError
from fraudops.labels.events import LabelsValidationError, validate_events
from fraudops.labels.ingest import ingest_events, max_skew
from fraudops.lake.commits import CommitListeners
from fraudops.serving.lake_holder import LakeHolder
from fraudops.timeutil import as_utc


def labels_route_payload(
    settings: Settings,
    lake: LakeHolder,
    body: bytes,
    *,
    now: dt.datetime | None = None,
    listeners: CommitListeners | None = None,
) -> tuple[int, dict[str, Any]]:
    """``POST /v1/labels``: one event (a JSON object) or a list of them, into ``lake``.

    422 in FastAPI's error shape when the body is not JSON or an entry is malformed (``loc``
    ``["body", i, field]`` for entry ``i`` of a list, ``["body", field]`` for a single object);
    nothing is written then (nor the lake opened). 200 with the IngestReport otherwise; 503
    when the lake fails.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return 422, _detail(["body", exc.pos], f"JSON decode error: {exc.msg}", "json_invalid")
    single = isinstance(payload, dict)
    if not single and not isinstance(payload, list):
        return 422, _detail(["body"], "expected a label event object or a list of them", "type")
    entries = [payload] if single else payload
    limit = settings.labels.max_batch
    if len(entries) > limit:
        return 422, _detail(
            ["body"], f"at most {limit} label events per request (labels.max_batch)", "too_long"
        )
    try:
        now = as_utc(now)
        valid = validate_events(entries, now=now, max_skew=max_skew(settings))
        with lake.use() as open_lake:
            report = ingest_events(open_lake, valid, now=now, origin="api", listeners=listeners)
    except LabelsValidationError as exc:
        detail = [
            {"loc": ["body", *(err["loc"][1:] if single else err["loc"])], **_msg_type(err)}
            for err in exc.errors
        ]
        return 422, {"detail": detail}
    except FraudopsError as exc:  # the lake is down or misconfigured: retry later
        return 503, {"detail": str(exc)}
    return 200, report.to_dict()


def _detail(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"detail": [{"loc": loc, "msg": msg, "type": kind}]}


def _msg_type(err: Mapping[str, Any]) -> dict[str, Any]:
    return {"msg": err["msg"], "type": err["type"]}
