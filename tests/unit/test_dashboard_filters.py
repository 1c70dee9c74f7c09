"""The dashboard's query string: ISO dates read as UTC, every bad value refused by name."""

from __future__ import annotations

import datetime as dt

import pytest

from fraudops.config import Settings
from fraudops.dashboard.filters import FilterError, parse_filters


def test_dates_and_names_are_read(settings: Settings) -> None:
    f = parse_filters(
        {"start": "2027-01-31", "end": "2027-02-01T12:00:00+01:00", "version": "v3", "x": "1"},
        settings,
    )
    assert f.start == dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    assert f.end == dt.datetime(2027, 2, 1, 11, tzinfo=dt.UTC)
    assert f.version == "3" and f.spec is None and f.feature is None
    assert parse_filters({"start": "", "spec": "  "}, settings).start is None


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"start": "31/01/2027"}, "start"),
        ({"end": "2027-02-30"}, "end"),
        ({"start": "2027-02-01", "end": "2027-02-01"}, "end"),
        ({"spec": "nope"}, "spec"),
        ({"version": "1;drop"}, "version"),
        ({"feature": "<b>"}, "feature"),
        ({"run_id": "../x"}, "run_id"),
        ({"feature": "a" * 201}, "feature"),
    ],
)
def test_bad_values_name_their_parameter(
    settings: Settings, query: dict[str, str], parameter: str
) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filters(query, settings)
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}: ")
