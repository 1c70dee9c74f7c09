"""A version's registry facts read straight from MLflow's SQLite store, without MLflow.

Importing MLflow and building its client costs ~1.7 s; a batch job that scores a file in under a
second would pay that only to learn which version an alias points at. With the SQLite store (the
default), this reads the rows MLflow's own client reads for ``get_model_version_by_alias`` and
``get_model_version`` (``registered_model_aliases``, ``model_versions``), read-only, in a few
milliseconds, at every call: an alias moved a moment ago by any MLflow client is seen.

Anything unexpected — another kind of store, a database file not there, a schema without these
columns, a name, version or alias it does not find, more than one workspace answering — gives
None, and the caller asks MLflow's client, which also words the errors.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"
DELETED_STAGE = "Deleted_Internal"  # MLflow's mark of a deleted version (kept as a row)
LATEST_ALIAS = "latest"  # resolved by MLflow itself (highest version): not read here

_BY_ALIAS = """
SELECT mv.version, mv.run_id, mv.source, mv.storage_location
FROM registered_model_aliases AS a
JOIN model_versions AS mv
  ON mv.name = a.name AND mv.version = a.version AND mv.workspace = a.workspace
WHERE a.name = ? AND a.alias = ? AND mv.current_stage != ?
"""
_BY_NUMBER = """
SELECT version, run_id, source, storage_location
FROM model_versions
WHERE name = ? AND version = ? AND current_stage != ?
"""


@dataclass(frozen=True)
class VersionRecord:
    """What loading a version needs: its number, run, registered source and download location."""

    version: str
    run_id: str | None
    source: str
    location: str  # where MLflow downloads it from: the storage location, else the source


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for any other store or in-memory)."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    path = tracking_uri[len(SQLITE_PREFIX) :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).expanduser()


def find_version(tracking_uri: str, model_name: str, version_or_alias: str) -> VersionRecord | None:
    """The version ``"3"``/``"v3"`` or alias of ``model_name``, or None (ask MLflow instead)."""
    path = sqlite_path(tracking_uri)
    if path is None or not path.is_file():
        return None
    ref = str(version_or_alias).strip()
    number = ref[1:] if ref[:1] in "vV" and ref[1:].isdigit() else ref
    if not number.isdigit() and (not ref or ref.lower() == LATEST_ALIAS):
        return None
    try:
        # Read-only, and no waiting past a moment on a writer's lock: MLflow will then answer.
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=2.0)) as db:
            if number.isdigit():
                rows = db.execute(_BY_NUMBER, (model_name, int(number), DELETED_STAGE)).fetchall()
            else:
                rows = db.execute(_BY_ALIAS, (model_name, ref, DELETED_STAGE)).fetchall()
    except sqlite3.Error:  # not MLflow's schema (or not yet): MLflow's client knows
        return None
    if len(rows) != 1:
        return None
    version, run_id, source, location = rows[0]
    if not (location or source):
        return None
    return VersionRecord(str(version), run_id, source or "", location or source)
