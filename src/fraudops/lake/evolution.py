"""Tables created by an older release: which spec columns they lack, and adding them.

``fraudops lake init`` on an existing home adds the optional columns a newer release appended to
a table's schema (``update_schema``: metadata only, no data file rewritten, nothing dropped);
any other difference between a live table and the spec is refused, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyiceberg.exceptions import CommitFailedException
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import NestedField

from fraudops.errors import LakeError
from fraudops.lake.schemas import describe_schema


class SchemaOutdatedError(LakeError):
    """A table lacks columns this release writes: ``fraudops lake init`` adds them."""

    def __init__(self, table: str, spec_name: str, columns: list[str]) -> None:
        self.table, self.columns = table, columns
        super().__init__(
            f"lake table {table} has no column(s) {', '.join(columns)} (created by an older "
            f"release): run `fraudops lake init --spec {spec_name}` to add them; nothing was "
            "changed"
        )


@dataclass(frozen=True)
class LakeInit:
    """What ``Lake.init_tables`` did: the tables created and the columns added to old ones."""

    created: list[str] = field(default_factory=list)
    columns_added: dict[str, list[str]] = field(default_factory=dict)
    properties_set: dict[str, list[str]] = field(default_factory=dict)  # maintenance's

    def to_dict(self) -> dict[str, Any]:
        return {
            "created": list(self.created),
            "columns_added": dict(self.columns_added),
            "properties_set": dict(self.properties_set),
        }


def columns_to_add(live: Schema, expected: Schema) -> list[NestedField] | None:
    """The fields ``expected`` appends to ``live``, when that is the whole difference and they
    are all optional; None otherwise (no difference, or one an upgrade cannot make)."""
    have, want = describe_schema(live), describe_schema(expected)
    if len(have) >= len(want) or want[: len(have)] != have:
        return None
    added = expected.fields[len(have) :]
    if any(f.required for f in added):
        return None
    return list(added)


def add_columns(
    load: Callable[[], Table],
    fields: list[NestedField],
    label: str,
    spec_name: str,
    expected: Schema,
) -> list[str]:
    """Add ``fields`` (optional) to the table ``load`` returns; the names added."""
    try:
        with load().update_schema() as update:
            for f in fields:
                update.add_column(f.name, f.field_type, doc=f.doc, required=False)
    except CommitFailedException:
        # A concurrent `lake init` added them first: fine if the table now matches.
        if problem := schema_mismatch(label, spec_name, load().schema(), expected):
            raise LakeError(problem) from None
        return []
    return [f.name for f in fields]


def schema_mismatch(table: str, spec_name: str, live: Schema, expected: Schema) -> str | None:
    """Why ``live`` cannot serve as ``expected`` (None when they match)."""
    have, want = describe_schema(live), describe_schema(expected)
    if have == want:
        return None
    have_by, want_by = {c[0]: c for c in have}, {c[0]: c for c in want}
    parts = []
    if missing := [n for n in want_by if n not in have_by]:
        parts.append(f"columns the spec adds: {', '.join(missing)}")
    if extra := [n for n in have_by if n not in want_by]:
        parts.append(f"columns the spec no longer has: {', '.join(extra)}")
    if changed := [n for n in want_by if n in have_by and have_by[n] != want_by[n]]:
        parts.append(
            "changed columns: "
            + ", ".join(f"{n} ({have_by[n][1]} -> {want_by[n][1]})" for n in changed)
        )
    if not parts:
        parts.append("the column order differs")
    return (
        f"table {table} does not match spec {spec_name!r}: "
        f"{'; '.join(parts)}. Use a new spec name for a changed spec."
    )
