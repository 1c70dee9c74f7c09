"""The memory allocators of the long-running processes (the server and its log writer).

Both processes hand Arrow work (scans, Parquet writes, label ingestion) to many threads: the
server's threadpool (up to 40 threads) and pyiceberg's readers. With pyarrow's default pool
(mimalloc) each thread keeps the pages it freed in its own heap, returned only when that thread
allocates again, and glibc gives each thread up to 8 x cores arenas of its own: the resident
size then climbs for as long as new threads pick up work (+15 MB/min in bench/soak.py's 20-minute
run). The system pool with at most ``MALLOC_ARENA_MAX`` (2) arenas gives freed memory back
instead, for no measurable cost on these paths (the request path does not allocate through Arrow).

Set before pyarrow first allocates (its default pool is chosen on first use); an explicit
``ARROW_DEFAULT_MEMORY_POOL`` or ``MALLOC_ARENA_MAX`` in the environment is kept. Children
started afterwards (the log writer) inherit the environment.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

ALLOCATOR_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "2"}
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def bound_allocators() -> str:
    """Set the allocators of this process (and of the children it starts); the Arrow pool's
    backend name in use."""
    for key, value in ALLOCATOR_ENV.items():
        os.environ.setdefault(key, value)
    _arena_max(os.environ["MALLOC_ARENA_MAX"])
    import pyarrow as pa

    wanted = os.environ["ARROW_DEFAULT_MEMORY_POOL"]
    pool = pa.default_memory_pool()
    if pool.backend_name != wanted and wanted == "system":
        # pyarrow allocated before the variable was read: its own calls use this pool from now.
        pa.set_memory_pool(pa.system_memory_pool())
        pool = pa.system_memory_pool()
    return str(pool.backend_name)


def _arena_max(value: str) -> None:
    """glibc reads MALLOC_ARENA_MAX at start-up: set it for this (started) process too."""
    try:
        arenas = int(value)
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError, ValueError):  # not glibc, or a bad value: left as is
        log.debug("MALLOC_ARENA_MAX not applied", exc_info=True)
