"""SQL over the lake: DuckDB on Arrow scans of the tables the statement names.

The DuckDB iceberg extension would need a download, so the tables are scanned with pyiceberg and
handed to an in-memory DuckDB connection under their bare names (``transactions``, ...). Only
tables named in the SQL are scanned, and only the columns it may use. The connection is thrown
away after the statement: SQL that "writes" (CREATE, INSERT) never reaches the lake.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from fraudops.errors import LakeError
from fraudops.lake.schemas import TABLES

if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def referenced_tables(sql: str) -> list[str]:
    """Lake tables whose name appears as a word in ``sql`` (SQL identifiers ignore case)."""
    words = {word.lower() for word in _WORD.findall(sql)}
    return [name for name in TABLES if name in words]


# Words after which SQL may use columns it does not name (`SELECT *`, `DESCRIBE t`, ...).
_IMPLICIT_COLUMNS = {"columns", "describe", "summarize", "pivot", "unpivot", "natural", "show"}
_COUNT_STAR = re.compile(r"count\s*\(\s*\*\s*\)", re.IGNORECASE)


def needed_columns(sql: str, columns: list[str]) -> list[str]:
    """The columns of a table that ``sql`` may read: a superset of those it names (maybe none).

    Scanning only those makes a query over a wide table (predictions) read a few columns instead
    of all. Any ``*`` (bar ``count(*)``) or construct that uses columns implicitly means all.
    """
    text = _COUNT_STAR.sub("count(1)", sql)
    words = {word.lower() for word in _WORD.findall(text)}
    if "*" in text or words & _IMPLICIT_COLUMNS:
        return columns
    return [c for c in columns if c.lower() in words]


def run_query(lake: Lake, sql: str) -> pa.Table:
    """The result of ``sql`` as Arrow; a DuckDB error becomes a LakeError with DuckDB's message."""
    if not sql.strip():
        raise LakeError("empty query")
    names = [name for name in referenced_tables(sql) if lake.exists(name)]
    try:
        return _execute(lake, sql, names, project=True)
    except duckdb.BinderException:
        # A column the projection guessed wrong, or a typo: the full tables settle it, and
        # DuckDB's "did you mean" then lists the real columns.
        pass
    except duckdb.Error as exc:
        raise _query_error(lake, sql, exc) from None
    try:
        return _execute(lake, sql, names, project=False)
    except duckdb.Error as exc:
        raise _query_error(lake, sql, exc) from None


def _execute(lake: Lake, sql: str, names: list[str], *, project: bool) -> pa.Table:
    con = duckdb.connect(":memory:")
    try:
        # No lookup of Python variables by table name, and timestamps shown in UTC.
        con.execute("SET python_enable_replacements = false")
        con.execute("SET TimeZone = 'UTC'")
        for name in names:
            columns = None
            if project:
                fields = lake.table(name).schema().fields
                # `SELECT count(*) FROM t` names no column but needs the rows: scan a cheap one.
                columns = needed_columns(sql, [f.name for f in fields]) or [
                    next(
                        (
                            f.name
                            for f in fields
                            if f.field_type.is_primitive and str(f.field_type) != "string"
                        ),
                        fields[0].name,
                    )
                ]
            con.register(name, lake.read(name, columns))
        relation = con.sql(sql)
        return relation.to_arrow_table() if relation is not None else pa.table({})
    finally:
        con.close()


def _query_error(lake: Lake, sql: str, exc: duckdb.Error) -> LakeError:
    missing = [name for name in referenced_tables(sql) if not lake.exists(name)]
    hint = ""
    if missing:
        hint = (
            f" (table(s) {', '.join(missing)} not created yet in namespace "
            f"{lake.namespace!r}: run `fraudops lake init --spec {lake.spec.name}`)"
        )
    return LakeError(f"query failed: {exc}{hint}")
