"""The files of a table: those under its folders, those its kept snapshots reference.

A file under ``<table>/data`` or ``<table>/metadata`` that no kept snapshot, no kept metadata
file and not the current metadata file references is an orphan: left by an expired snapshot, a
compaction, a commit that lost (or a process killed before) its catalog update. Manifests and
manifest lists never change once written, so what they reference is cached per process.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyarrow.fs import FileSelector, FileType
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.manifest import DataFile, ManifestFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from fraudops.errors import LakeError

CACHE_ENTRIES = 4096
TABLE_FOLDERS = ("data", "metadata")


@dataclass(frozen=True)
class StoredFile:
    path: str  # as the filesystem names it (no scheme): the key compared with references
    location: str  # as FileIO takes it, for the delete
    size: int
    mtime_s: float
    folder: str  # data | metadata


class ManifestCache:
    """Manifest lists and the paths manifests list, read once per process (they are immutable).

    Bounded by what the table still needs, not by the history: ``retain_used()`` (at the end of
    each maintenance run) drops every entry the run did not ask for, i.e. those of expired
    snapshots and rewritten manifests; ``max_entries`` is a backstop between runs. Only paths
    are kept per manifest, not pyiceberg's DataFile objects (their per-column statistics weigh
    kilobytes each: a process maintaining ``predictions`` every few seconds grew by tens of MB).
    """

    def __init__(self, max_entries: int = CACHE_ENTRIES) -> None:
        self.max_entries = max_entries
        self._lists: OrderedDict[str, tuple[ManifestFile, ...]] = OrderedDict()
        self._entries: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._used: set[str] = set()

    @property
    def size(self) -> int:
        """Manifest lists and manifests held (no __len__: an empty cache is still a cache)."""
        return len(self._lists) + len(self._entries)

    def manifests(self, io: FileIO, snapshot: Snapshot) -> tuple[ManifestFile, ...]:
        key = snapshot.manifest_list
        self._used.add(key)
        found = self._lists.get(key)
        if found is None:
            found = tuple(snapshot.manifests(io))
            self._put(self._lists, key, found)
        return found

    def live_paths(self, io: FileIO, manifest: ManifestFile) -> tuple[str, ...]:
        """The paths of the data (and delete) files a manifest lists as added or existing."""
        key = manifest.manifest_path
        self._used.add(key)
        found = self._entries.get(key)
        if found is None:
            found = tuple(f.file_path for f in manifest_live_files(io, manifest))
            self._put(self._entries, key, found)
        return found

    def retain_used(self) -> None:
        """Forget every entry not asked for since the previous call."""
        for cache in (self._lists, self._entries):
            for key in [k for k in cache if k not in self._used]:
                del cache[key]
        self._used = set()

    def _put(self, cache: OrderedDict[str, Any], key: str, value: Any) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self.max_entries:
            cache.popitem(last=False)


def manifest_live_files(io: FileIO, manifest: ManifestFile) -> list[DataFile]:
    """The data (and delete) files a manifest lists as added or existing (read, not cached)."""
    return [e.data_file for e in manifest.fetch_manifest_entry(io, discard_deleted=True)]


def _arrow_io(table: Table) -> PyArrowFileIO:
    io = table.io
    if not isinstance(io, PyArrowFileIO):  # fraudops' catalogs always use its GuardedFileIO
        raise LakeError(f"table {table.name()}: maintenance needs pyiceberg's Arrow FileIO")
    return io


def fs_path(io: PyArrowFileIO, location: str) -> str:
    """``location`` (a URI or a path) as the filesystem names it."""
    return io.parse_location(location, io.properties)[2]


def live_data_files(table: Table, snapshot: Snapshot, cache: ManifestCache) -> list[DataFile]:
    io = table.io
    return [f for m in cache.manifests(io, snapshot) for f in manifest_live_files(io, m)]


def referenced_paths(table: Table, snapshots: Iterable[Snapshot], cache: ManifestCache) -> set[str]:
    """Every file the table's current metadata and ``snapshots`` need, as filesystem paths."""
    io = _arrow_io(table)
    metadata = table.metadata
    locations = {table.metadata_location, *(e.metadata_file for e in metadata.metadata_log)}
    locations.update(s.statistics_path for s in metadata.statistics)
    locations.update(s.statistics_path for s in metadata.partition_statistics)
    for snapshot in snapshots:
        locations.add(snapshot.manifest_list)
        for manifest in cache.manifests(io, snapshot):
            locations.add(manifest.manifest_path)
            locations.update(cache.live_paths(io, manifest))
    return {fs_path(io, loc) for loc in locations}


def stored_files(table: Table) -> list[StoredFile]:
    """The files under the table's data and metadata folders."""
    io = _arrow_io(table)
    root = table.location().rstrip("/")
    scheme, netloc, _ = io.parse_location(root, io.properties)
    fs = io.fs_by_scheme(scheme, netloc)
    prefix = f"{scheme}://" if "://" in root else ""
    found = []
    for folder in TABLE_FOLDERS:
        selector = FileSelector(
            fs_path(io, f"{root}/{folder}"), recursive=True, allow_not_found=True
        )
        for info in fs.get_file_info(selector):
            if info.type != FileType.File:
                continue
            mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
            location = f"{prefix}{info.path}"
            found.append(StoredFile(info.path, location, int(info.size or 0), mtime, folder))
    return found


def current_metadata_bytes(table: Table, files: Iterable[StoredFile]) -> int:
    path = fs_path(_arrow_io(table), table.metadata_location)
    return next((f.size for f in files if f.path == path), 0)


def delete_files(table: Table, files: Iterable[StoredFile]) -> int:
    """Delete ``files``; how many went (one already gone counts as gone)."""
    io = table.io
    removed = 0
    for f in files:
        with contextlib.suppress(FileNotFoundError):  # gone already: gone
            io.delete(f.location)
        removed += 1
    return removed
