"""pyiceberg's FileIO, minus one habit: recreating a local warehouse folder that is gone.

pyiceberg's local filesystem creates every parent folder of a file it writes. When the lake
folder is moved away under a running writer, that habit rebuilds ``<home>/lake/warehouse/...``
around the next data file: a half-lake that keeps the real one from being moved back. Here a
file is written only while the warehouse root (the catalog's ``warehouse`` folder) exists;
folders under it are still created as needed.
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow
from pyarrow.fs import FileSystem
from pyiceberg.io.pyarrow import PyArrowFileIO, PyArrowLocalFileSystem

WAREHOUSE_ROOT_PROPERTY = "fraudops.warehouse-root"


class _GuardedLocalFileSystem(PyArrowLocalFileSystem):
    root: str | None = None

    def open_output_stream(self, path: str, *args: Any, **kwargs: Any) -> pyarrow.NativeFile:
        root = self.root
        if (
            root is not None
            and os.path.commonpath([root, path]) == root
            and not os.path.isdir(root)
        ):
            raise FileNotFoundError(
                f"lake warehouse {root} does not exist (moved away?): not writing {path}"
            )
        return super().open_output_stream(path, *args, **kwargs)


class GuardedFileIO(PyArrowFileIO):
    def _initialize_local_fs(self) -> FileSystem:
        fs = _GuardedLocalFileSystem()
        fs.root = self.properties.get(WAREHOUSE_ROOT_PROPERTY)
        return fs
