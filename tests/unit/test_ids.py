import datetime as dt
import uuid

from fraudops.ids import minted_at, uuid7


def test_uuid7_carries_its_millisecond_and_is_a_version_7_uuid():
    at = dt.datetime(2027, 1, 2, 3, 4, 5, 678_000, tzinfo=dt.UTC)
    value = uuid7(at)
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert minted_at(value) == at
    assert minted_at(value.replace("-", "")) == at  # as 32 hex digits too


def test_uuid7_is_time_ordered_and_unique():
    base = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    ids = [uuid7(base + dt.timedelta(milliseconds=i)) for i in range(200)]
    assert ids == sorted(ids)
    assert len({uuid7(base) for _ in range(1000)}) == 1000


def test_minted_at_is_none_for_other_ids():
    assert minted_at(str(uuid.uuid4())) is None
    assert minted_at("tx-000123") is None
    assert minted_at("") is None
