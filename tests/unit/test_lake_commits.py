"""After-commit events: every subscriber told, in order; a failing one logged, never raised."""

from __future__ import annotations

import logging

import pytest

from fraudops.lake.commits import CommitListeners, Committed, LabelsCommitted


def test_a_failing_subscriber_is_logged_and_the_next_one_still_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    told: list[tuple[str, Committed]] = []
    closed: list[str] = []

    def broken(event: Committed) -> None:
        raise OSError("disk gone")

    listeners = CommitListeners()
    listeners.subscribe(lambda e: told.append(("first", e)), close=lambda: closed.append("first"))
    listeners.subscribe(broken)
    listeners.subscribe(lambda e: told.append(("last", e)))
    event = Committed("transactions30", "predictions", 40)
    with caplog.at_level(logging.WARNING):
        listeners.publish(event)  # does not raise
    assert told == [("first", event), ("last", event)]
    assert "transactions30.predictions" in caplog.text and "OSError: disk gone" in caplog.text
    listeners.close()
    listeners.close()
    assert closed == ["first"]  # closed once


def test_a_label_ingestion_that_wrote_nothing_is_still_an_event() -> None:
    event = LabelsCommitted("transactions30", "labels", 0, batch=None, origin="api")
    assert event.rows == 0 and event.batch is None and event.counts.received == 0
    assert isinstance(event, Committed)
