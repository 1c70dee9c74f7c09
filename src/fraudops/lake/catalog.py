"""The lake: an Iceberg SQL catalog (SQLite by default, any SQLAlchemy URI by config), its tables.

One Iceberg namespace per feature spec (namespace = spec name): the feature columns of
``transactions`` and ``predictions`` depend on the spec, and a model is trained per spec.
Every write is one Iceberg commit, so a reader sees all of a batch or none of it.

Only ``init()`` (``fraudops lake init``, and the demo on an empty home) creates anything: the
SQLite catalog file, the warehouse folder, the catalog's own tables, the namespace, the lake
tables, and the optional columns a newer release appended to existing ones (``evolution.py``).
An ``s3://`` warehouse's bucket is never created, not even there (``storage.py``).
Opening a lake whose catalog or warehouse is missing raises ``LakeMissingError`` instead, and
no data or metadata file is ever written under a warehouse folder that is gone (see
``fileio.py``): a lake moved away under a running writer is never silently recreated.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.exceptions import ValidationException as CommitValidationError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.expressions.parser import parse as parse_filter
from pyiceberg.schema import Schema
from pyiceberg.table import DataScan, Table
from pyiceberg.types import NestedField
from pyparsing import ParseBaseException
from sqlalchemy import inspect as sql_inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from fraudops.config import Settings
from fraudops.errors import LakeError
from fraudops.lake.evolution import (
    LakeInit,
    SchemaOutdatedError,
    add_columns,
    columns_to_add,
    schema_mismatch,
)
from fraudops.lake.fileio import WAREHOUSE_ROOT_PROPERTY
from fraudops.lake.maintenance_policy import add_missing_properties, maintenance_properties
from fraudops.lake.schemas import (
    TABLES,
    check_table_name,
    partition_spec,
    table_properties,
    table_schema,
)
from fraudops.lake.storage import missing_bucket, s3_properties, warehouse_of
from fraudops.spec import FeatureSpec

TableData: TypeAlias = pa.Table | pd.DataFrame | Sequence[Mapping[str, Any]]

MAX_ROWS_SHOWN = 5
APPEND_ROUNDS = 3  # rounds of pyiceberg's own commit retries before an append gives up
# pyiceberg's SqlCatalog: the FileIO class, and whether connecting creates its own tables.
_FILE_IO = "fraudops.lake.fileio.GuardedFileIO"
_CATALOG_TABLE = "iceberg_tables"


class LakeMissingError(LakeError):
    """The catalog, the warehouse or a table is not there: ``fraudops lake init`` creates them
    (or the lake folder was moved away, and will be back)."""


class TableReplacedError(LakeError):
    """A table is not the one a writer has been writing to (another Iceberg table uuid)."""

    def __init__(self, table: str, expected: str, found: str) -> None:
        self.table, self.expected, self.found = table, expected, found
        super().__init__(
            f"lake table {table} was replaced: it was Iceberg table {expected}, it is now "
            f"{found}; stopped writing to it (the records stay where they are)"
        )


class Lake:
    """The lake tables of one feature spec. Cheap to build: the catalog connects on first use."""

    def __init__(self, settings: Settings, spec: FeatureSpec) -> None:
        self.settings = settings
        self.spec = spec
        self._catalog: SqlCatalog | None = None

    @classmethod
    def open(cls, settings: Settings, spec_name: str | None = None) -> Lake:
        """The lake of spec ``spec_name`` (default: the active spec); ConfigError if unknown."""
        return cls(settings, settings.feature_spec(spec_name))

    # ---- catalog -------------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.spec.name

    @property
    def catalog(self) -> SqlCatalog:
        """The connected catalog; LakeMissingError if it (or the warehouse) does not exist."""
        if self._catalog is None:
            self._catalog = _connect(self.settings, create=False, spec_name=self.spec.name)
        return self._catalog

    def close(self) -> None:
        """Release the catalog's database connections (PostgreSQL keeps a pool otherwise)."""
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def __enter__(self) -> Lake:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def identifier(self, name: str) -> tuple[str, str]:
        return (self.namespace, check_table_name(name))

    def init(self) -> list[str]:
        """``init_tables()``, returning the names of the tables it created."""
        return self.init_tables().created

    def init_tables(self) -> LakeInit:
        """Create the namespace and every missing table; add to existing tables the optional
        columns a newer release appended to their schema (see ``evolution.py``).

        Idempotent: an existing table is kept (after checking it still matches the spec), so a
        second run changes nothing. Every table is checked before any is created or altered.
        The one place that creates a missing catalog (the SQLite file, the catalog's tables)
        and warehouse folder.
        """
        if self._catalog is None:
            self._catalog = _connect(self.settings, create=True, spec_name=self.spec.name)
        catalog = self._catalog
        schemas = {name: table_schema(name, self.spec) for name in TABLES}
        with _catalog_errors(self.settings):
            catalog.create_namespace_if_not_exists(self.namespace)
            missing: list[str] = []
            upgrades: dict[str, list[NestedField]] = {}
            for name, expected in schemas.items():
                if not catalog.table_exists(self.identifier(name)):
                    missing.append(name)
                    continue
                live = catalog.load_table(self.identifier(name)).schema()
                if (added := columns_to_add(live, expected)) is not None:
                    upgrades[name] = added
                elif problem := schema_mismatch(
                    f"{self.namespace}.{name}", self.spec.name, live, expected
                ):
                    raise LakeError(problem)
            created, upkeep = [], maintenance_properties(self.settings)
            for name in missing:
                try:
                    catalog.create_table(
                        self.identifier(name),
                        schema=schemas[name],
                        partition_spec=partition_spec(name, schemas[name]),
                        properties={**table_properties(name), **upkeep},
                    )
                except TableAlreadyExistsError:  # a concurrent `lake init` won the race
                    continue
                created.append(name)
            columns_added: dict[str, list[str]] = {}
            for name, fields in upgrades.items():
                load = partial(catalog.load_table, self.identifier(name))
                label = f"{self.namespace}.{name}"
                if columns := add_columns(load, fields, label, self.spec.name, schemas[name]):
                    columns_added[name] = columns
            # The maintenance properties, on the tables an older release created too.
            old = {
                n: partial(catalog.load_table, self.identifier(n))
                for n in schemas
                if n not in created
            }
            properties_set = add_missing_properties(old, upkeep)
        return LakeInit(created, columns_added, properties_set)

    def column_names(self, name: str) -> list[str]:
        """The columns table ``name`` has (an older table may lack some of the spec's)."""
        return [f.name for f in self.table(name).schema().fields]

    def require_columns(self, name: str, columns: Sequence[str]) -> None:
        """SchemaOutdatedError naming `fraudops lake init` unless table ``name`` has ``columns``."""
        have = set(self.column_names(name))
        if lacking := [c for c in columns if c not in have]:
            raise SchemaOutdatedError(f"{self.namespace}.{name}", self.spec.name, lacking)

    def exists(self, name: str) -> bool:
        with _catalog_errors(self.settings):
            return self.catalog.table_exists(self.identifier(name))

    def table(self, name: str) -> Table:
        """The live Iceberg table ``name`` of this spec's namespace."""
        identifier = self.identifier(name)
        catalog = self.catalog
        with _catalog_errors(self.settings):
            try:
                return catalog.load_table(identifier)
            except NoSuchTableError:
                raise LakeMissingError(
                    f"lake table {self.namespace}.{name} does not exist: run `fraudops lake init"
                    f" --spec {self.spec.name}` first"
                ) from None

    def table_uuid(self, name: str) -> str:
        """The Iceberg uuid of table ``name``: another uuid means another table."""
        return str(self.table(name).metadata.table_uuid)

    def check(self, names: Sequence[str] = TABLES) -> None:
        """Raise LakeMissingError unless the catalog and tables ``names`` are all there."""
        for name in names:
            self.table(name)

    # ---- writes --------------------------------------------------------------------------

    def append(
        self, name: str, data: TableData, *, snapshot_properties: Mapping[str, str] | None = None
    ) -> int:
        """Append ``data`` to table ``name`` in one atomic commit; returns the rows written.

        Columns are cast to the table's types; absent optional columns become nulls; an unknown
        column, a missing or null required column, or an impossible cast is a LakeError.
        """
        table = self.table(name)
        arrow = conform(to_arrow(data), table.schema(), f"{self.namespace}.{name}")
        if arrow.num_rows == 0:
            return 0
        # pyiceberg retries a lost race 4 times (~1 s apart); loaded writers can lose 5 in a row:
        # start over on the table as it now is (a lost round's files: orphans maintenance removes)
        for attempt in range(1, APPEND_ROUNDS + 1):
            try:
                with _catalog_errors(self.settings):
                    table.append(arrow, snapshot_properties=dict(snapshot_properties or {}))
                break
            except (CommitFailedException, CommitValidationError) as exc:
                if isinstance(exc, CommitValidationError) or attempt == APPEND_ROUNDS:
                    raise LakeError(f"could not append to {self.namespace}.{name}: {exc}") from None
                table = self.table(name)
        return arrow.num_rows

    def replace(
        self, name: str, data: TableData, *, snapshot_properties: Mapping[str, str] | None = None
    ) -> int:
        """Replace the whole content of table ``name`` with ``data`` in one atomic commit."""
        table = self.table(name)
        arrow = conform(to_arrow(data), table.schema(), f"{self.namespace}.{name}")
        try:
            with _catalog_errors(self.settings), warnings.catch_warnings():
                # pyiceberg warns when the overwrite's delete finds an empty table: expected.
                warnings.filterwarnings("ignore", "Delete operation did not match any records")
                table.overwrite(arrow, snapshot_properties=dict(snapshot_properties or {}))
        except (CommitFailedException, CommitValidationError):
            raise LakeError(
                f"{self.namespace}.{name} was changed by another writer during the "
                "replace; nothing was replaced, try again"
            ) from None
        return arrow.num_rows

    # ---- reads ---------------------------------------------------------------------------

    def scan(
        self, name: str, columns: Sequence[str] | None = None, row_filter: str | None = None
    ) -> DataScan:
        """The scan of table ``name`` (columns checked, filter parsed), nothing read yet:
        ``read`` runs it here, ``lake.dask_io`` plans it and reads its files on workers."""
        table = self.table(name)
        if columns is not None:
            known = {f.name for f in table.schema().fields}
            if unknown := [c for c in columns if c not in known]:
                raise LakeError(
                    f"table {self.namespace}.{name} has no column(s) "
                    f"{', '.join(map(repr, unknown))}"
                )
        where = self._row_filter(name, row_filter)
        try:
            return table.scan(
                row_filter=where,
                selected_fields=tuple(columns) if columns is not None else ("*",),
            )
        except (ValueError, TypeError) as exc:
            raise self.scan_error(name, row_filter, exc) from None

    def scan_error(self, name: str, row_filter: str | None, exc: Exception) -> LakeError:
        """What a scan that pyiceberg refused says (a filter naming an unknown column, say)."""
        return LakeError(f"cannot read {self.namespace}.{name} with filter {row_filter!r}: {exc}")

    def read(
        self, name: str, columns: Sequence[str] | None = None, row_filter: str | None = None
    ) -> pa.Table:
        """Table ``name`` as Arrow; ``row_filter`` is an Iceberg filter such as ``"label = 1"``."""
        scan = self.scan(name, columns, row_filter)
        try:
            return scan.to_arrow()
        except (ValueError, TypeError) as exc:
            raise self.scan_error(name, row_filter, exc) from None

    def _row_filter(self, name: str, row_filter: str | None) -> BooleanExpression:
        if not row_filter:
            return AlwaysTrue()
        try:
            return parse_filter(row_filter)
        except ParseBaseException as exc:
            raise LakeError(
                f"cannot read {self.namespace}.{name}: the filter {row_filter!r} does not parse "
                f'at character {exc.loc + 1} (expected e.g. "label = 1 and amount > 100")'
            ) from None

    def read_frame(
        self, name: str, columns: Sequence[str] | None = None, row_filter: str | None = None
    ) -> pd.DataFrame:
        return self.read(name, columns, row_filter).to_pandas()

    def count(self, name: str) -> int:
        # From the manifests' record counts: no data file is opened.
        return self.table(name).scan().count()

    def counts(self) -> dict[str, int]:
        """Rows per existing table (tables not yet created are left out)."""
        return {name: self.count(name) for name in TABLES if self.exists(name)}


# ---- catalog connection --------------------------------------------------------------------


def _connect(settings: Settings, *, create: bool, spec_name: str) -> SqlCatalog:
    """The catalog; with ``create`` its SQLite file, tables and warehouse folder are made if
    missing, without it a missing one is a LakeMissingError and nothing is created."""
    hint = (
        f"run `fraudops lake init --spec {spec_name}` to create the lake "
        "(or bring back the folder it was moved from)"
    )
    url = _parse_uri(settings.catalog_uri)
    sqlite_file = _sqlite_file(url)
    location = warehouse_of(settings)
    warehouse = location.folder
    if (problem := missing_bucket(settings, location)) is not None:
        raise LakeMissingError(problem)  # never created here, not even by `lake init`
    if create:
        if sqlite_file is not None:
            sqlite_file.parent.mkdir(parents=True, exist_ok=True)
        if warehouse is not None:
            warehouse.mkdir(parents=True, exist_ok=True)
    else:
        if sqlite_file is not None and not sqlite_file.is_file():
            raise LakeMissingError(f"lake catalog {sqlite_file} does not exist: {hint}")
        if warehouse is not None and not warehouse.is_dir():
            raise LakeMissingError(f"lake warehouse {warehouse} does not exist: {hint}")
    uri = settings.catalog_uri
    if sqlite_file is not None and not create:
        # SQLite creates a missing database file on connect: read-write mode never does.
        uri = _sqlite_read_write(url, sqlite_file)
    properties = {
        "uri": uri,
        "warehouse": settings.warehouse,
        "py-io-impl": _FILE_IO,
        "init_catalog_tables": str(create).lower(),
    }
    if warehouse is not None:
        properties[WAREHOUSE_ROOT_PROPERTY] = str(warehouse)
    else:
        properties.update(s3_properties(settings))
    with _catalog_errors(settings):
        catalog = SqlCatalog(settings.lake.catalog_name, **properties)
        if not create and not sql_inspect(catalog.engine).has_table(_CATALOG_TABLE):
            catalog.close()
            shown = url.render_as_string(hide_password=True)
            raise LakeMissingError(f"lake catalog {shown} holds no Iceberg catalog: {hint}")
    return catalog


def _parse_uri(catalog_uri: str) -> URL:
    try:
        return make_url(catalog_uri)
    except ArgumentError as exc:
        raise LakeError(
            f"lake.catalog_uri {catalog_uri!r} is not a SQLAlchemy URI: {exc}"
        ) from None


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = str(url.database)
    if database.startswith("file:"):  # already a SQLite URI filename
        return None
    return Path(database).expanduser().absolute()


def _sqlite_read_write(url: URL, path: Path) -> str:
    query = {**url.query, "mode": "rw", "uri": "true"}
    rw = url.set(database=f"file:{path}", query=query)
    return rw.render_as_string(hide_password=False)


@contextmanager
def _catalog_errors(settings: Settings) -> Iterator[None]:
    """Turn a database failure (server down, bad credentials) into a LakeError naming the URI."""
    try:
        yield
    except SQLAlchemyError as exc:
        uri = make_url(settings.catalog_uri).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise LakeError(f"lake catalog {uri} failed: {reason}") from exc


# ---- conforming data to a table schema ---------------------------------------------------------


def to_arrow(data: TableData) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    try:
        if isinstance(data, pd.DataFrame):
            return pa.Table.from_pandas(data, preserve_index=False)
        return pa.Table.from_pylist([dict(row) for row in data])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise LakeError(f"cannot convert the rows to Arrow: {exc}") from None


def conform(data: pa.Table, schema: Schema, table_name: str) -> pa.Table:
    """``data`` with exactly the columns and types of ``schema`` (in its order, with field ids)."""
    target = schema.as_arrow()
    if data.num_rows == 0 and data.num_columns == 0:  # an empty list of rows
        return target.empty_table()
    if unknown := [c for c in data.column_names if c not in target.names]:
        raise LakeError(f"table {table_name} has no column(s) {', '.join(map(repr, unknown))}")
    columns = []
    for field in target:
        if field.name in data.column_names:
            column = _cast(data[field.name], field.type, table_name, field.name)
        elif field.nullable:
            column = pa.chunked_array([pa.nulls(data.num_rows, field.type)])
        else:
            raise LakeError(f"table {table_name}: required column {field.name!r} is missing")
        if not field.nullable and column.null_count:
            rows = _first_rows(column.is_null())
            raise LakeError(
                f"table {table_name}: required column {field.name!r} is null at row(s) {rows}"
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=target)


def _cast(
    column: pa.ChunkedArray, target: pa.DataType, table_name: str, name: str
) -> pa.ChunkedArray:
    if column.type == target:
        return column
    try:
        if pa.types.is_timestamp(target):
            return _to_timestamp(column, target)
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise LakeError(
            f"table {table_name}: column {name!r} ({column.type}) cannot be stored "
            f"as {target}: {exc}"
        ) from None


def _to_timestamp(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    source = column.type
    if pa.types.is_timestamp(source):
        # Keep the instant; naive values are taken as UTC; ns precision is floored to µs.
        floored = column.cast(pa.timestamp("us", tz=source.tz), safe=False)
        return floored.cast(target)
    if pa.types.is_date(source):
        return column.cast(pa.timestamp("us")).cast(target)
    if pa.types.is_string(source) or pa.types.is_large_string(source):
        parsed = pd.to_datetime(column.to_pandas(), utc=True, format="ISO8601")
        return pa.chunked_array([pa.array(parsed, type=target)])
    if source == pa.null():
        return column.cast(target)
    raise ValueError(f"expected a timestamp, got {source}")


def _first_rows(mask: pa.ChunkedArray | pa.Array) -> str:
    """The first few 1-based row numbers where ``mask`` is true."""
    indices = pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()
    shown = ", ".join(str(i + 1) for i in indices[:MAX_ROWS_SHOWN])
    more = len(indices) - MAX_ROWS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")
