"""The server and its log writer give freed memory back: Arrow's system pool, few glibc arenas."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = (
    "import os\n"
    "from fraudops.serving.allocators import bound_allocators\n"
    "print(bound_allocators(), os.environ['MALLOC_ARENA_MAX'])\n"
)


def _run(**env: str) -> list[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX")
    }
    done = subprocess.run(
        [sys.executable, "-c", CODE],
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_the_system_pool_and_two_arenas_by_default() -> None:
    assert _run() == ["system", "2"]


def test_an_explicit_choice_is_kept() -> None:
    assert _run(ARROW_DEFAULT_MEMORY_POOL="jemalloc", MALLOC_ARENA_MAX="4") == ["jemalloc", "4"]


def test_a_pool_already_in_use_is_replaced() -> None:
    code = "import pyarrow as pa; pa.array([1, 2, 3]); pa.default_memory_pool()\n" + CODE
    base = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=base, capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == "system"
