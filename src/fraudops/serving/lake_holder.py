"""The lake client a server keeps for its label requests (``POST /v1/labels``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from fraudops.errors import ValidationError

# The lake (pyiceberg) is imported by the first label request, not by the server's start.
if TYPE_CHECKING:
    from fraudops.lake.catalog import Lake

log = logging.getLogger(__name__)


class LakeHolder:
    """The lake client a server's label requests share (``Runtime.lake_factory``): opened on
    first use, used by one request at a time (a Lake is not shared across threads, and two
    ingestions of one process would only race for the same commit), and reopened after a
    failure (a restarted catalog database)."""

    def __init__(self, open_lake: Callable[[], Lake]) -> None:
        self.open_lake = open_lake
        self._lake: Lake | None = None
        self._lock = threading.Lock()

    @contextmanager
    def use(self) -> Iterator[Lake]:
        with self._lock:
            if self._lake is None:
                self._lake = self.open_lake()
            try:
                yield self._lake
            except ValidationError:
                raise  # the batch was wrong, not the lake
            except BaseException:
                self._drop()
                raise

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._lake is not None:
            try:
                self._lake.close()
            except Exception:  # closing a broken connection may fail too: nothing to keep
                log.debug("closing the labels' lake after a failure failed", exc_info=True)
            self._lake = None
