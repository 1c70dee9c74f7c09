"""Which differences between a live table and the spec `lake init` may add, and which it refuses."""

from __future__ import annotations

from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from fraudops.lake.evolution import columns_to_add, schema_mismatch


def schema(*columns: tuple[str, bool]) -> Schema:
    return Schema(
        *(
            NestedField(i, name, StringType(), required=required)
            for i, (name, required) in enumerate(columns, start=1)
        )
    )


LIVE = schema(("id", True), ("a", False))


def test_optional_columns_appended_are_added() -> None:
    added = columns_to_add(LIVE, schema(("id", True), ("a", False), ("b", False), ("c", False)))
    assert [f.name for f in added or []] == ["b", "c"]


def test_other_differences_are_not_an_upgrade() -> None:
    assert columns_to_add(LIVE, LIVE) is None  # nothing to add
    assert columns_to_add(LIVE, schema(("id", True), ("a", False), ("b", True))) is None
    assert columns_to_add(LIVE, schema(("id", True), ("b", False), ("a", False))) is None
    assert columns_to_add(LIVE, schema(("id", True))) is None
    retyped = Schema(
        NestedField(1, "id", StringType(), required=True), NestedField(2, "a", LongType())
    )
    assert columns_to_add(LIVE, Schema(*retyped.fields, NestedField(3, "b", StringType()))) is None


def test_a_mismatch_names_what_differs() -> None:
    assert schema_mismatch("ns.t", "s", LIVE, LIVE) is None
    message = schema_mismatch("ns.t", "s", LIVE, schema(("id", True), ("b", False)))
    assert message == (
        "table ns.t does not match spec 's': columns the spec adds: b; columns the spec no "
        "longer has: a. Use a new spec name for a changed spec."
    )
