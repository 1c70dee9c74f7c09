"""``POST /v1/labels``'s payload function: FastAPI's error shape, the batch limit, nothing
written on a refusal (no lake needed)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fraudops.config import Settings, load_settings
from tests.labels_support import post_labels


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home=home, labels={"max_batch": 3})


def test_route_refuses_bad_json_and_bad_entries_in_fastapi_shape(settings: Settings) -> None:
    status, body = post_labels(settings, "transactions30", b'[{"label": ')
    assert status == 422 and body["detail"][0]["type"] == "json_invalid"
    assert body["detail"][0]["loc"][0] == "body"

    status, body = post_labels(settings, None, b'"just a string"')
    assert status == 422 and body["detail"][0]["loc"] == ["body"]

    batch = [{"inference_id": "a", "label": 1}, {"inference_id": "b", "label": "maybe"}]
    status, body = post_labels(settings, None, orjson.dumps(batch))
    assert status == 422
    assert body == {
        "detail": [
            {
                "loc": ["body", 1, "label"],
                "msg": "Value error, label must be 1 (fraud) or 0 (legitimate)",
                "type": "value_error",
            }
        ]
    }

    status, body = post_labels(settings, None, orjson.dumps({"label": 1}))
    assert status == 422 and body["detail"][0]["loc"] == ["body"]  # one object: no index
    status, body = post_labels(
        settings, None, orjson.dumps({"inference_id": "a", "label": 1, "confidence": 3})
    )
    assert status == 422 and body["detail"][0]["loc"] == ["body", "confidence"]

    too_many = [{"inference_id": str(i), "label": 0} for i in range(4)]
    status, body = post_labels(settings, None, orjson.dumps(too_many))
    assert status == 422 and "labels.max_batch" in body["detail"][0]["msg"]
    # Nothing reached the lake: validation comes first.
    assert not (settings.home_dir / "lake").exists()
