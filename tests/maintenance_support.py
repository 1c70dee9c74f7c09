"""Helpers for the lake-maintenance tests: a lake whose `predictions` got many small commits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fraudops.config import Settings, load_settings
from fraudops.inference_log.records import encode, parse_line
from fraudops.inference_log.sink import PredictionSink
from fraudops.lake import Lake
from fraudops.runtime import Runtime
from fraudops.spec import BUILTIN_SPECS
from tests.unit.test_inference_log_records import make_record

SPEC = BUILTIN_SPECS["transactions30"]


def rows(start: int, count: int) -> list[dict[str, Any]]:
    """Decoded log records with ids inf-<n> (the writer's input)."""
    out = []
    for i in range(start, start + count):
        row = parse_line(encode(make_record(SPEC, i, inference_id=f"inf-{i:06d}")))
        assert row is not None
        out.append(row)
    return out


def lake_settings(home: Path, **maintenance: Any) -> Settings:
    settings = load_settings(home=home, maintenance=maintenance)
    with Lake.open(settings) as lake:
        lake.init()
    return settings


def commit_batches(settings: Settings, batches: int, size: int = 5, start: int = 0) -> int:
    """``batches`` commits of ``size`` rows to predictions; the next free id number."""
    with PredictionSink(settings, open_lake=Runtime(settings).lake_factory()) as sink:
        for b in range(batches):
            sink.commit(rows(start + b * size, size))
    return start + batches * size


def ids(settings: Settings) -> list[str]:
    with Lake.open(settings) as lake:
        return sorted(lake.read("predictions", ["inference_id"])["inference_id"].to_pylist())


def table_files(settings: Settings, table: str = "predictions") -> list[Path]:
    root = settings.home_dir / "lake" / "warehouse" / "transactions30" / table
    return sorted(p for p in root.rglob("*") if p.is_file())
