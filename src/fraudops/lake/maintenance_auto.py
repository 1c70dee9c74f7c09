"""Maintenance on its own: every ``maintenance.interval_s``, in the process that writes a table.

The log writer (and each Redis consumer) maintains ``predictions`` and ``prediction_stats``
between its commits, label ingestion ``labels`` and its aggregates after its commit, the
scheduler the other tables (``fraudops lake maintain --scheduled``). When each group last ran
is kept in ``<home>/maintenance/<spec>-<group>.json``, so a short-lived process (``labels load``)
runs it when it is due too, and a restarted writer does not start over. Best effort: a failure
is logged and never stops the writing. ``maintenance.enabled: false`` turns it off.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from fraudops.config import Settings
from fraudops.lake.catalog import Lake
from fraudops.lake.commits import Committed, LabelsCommitted
from fraudops.lake.maintenance import LABEL_TABLES, TableMaintenance, maintain
from fraudops.lake.maintenance_files import ManifestCache
from fraudops.lake.maintenance_policy import MaintenancePolicy

log = logging.getLogger(__name__)


class AutoMaintainer:
    """Maintains ``tables`` of one spec when ``maintenance.interval_s`` has passed."""

    def __init__(
        self, settings: Settings, spec_name: str | None, tables: Sequence[str], group: str
    ) -> None:
        self.settings = settings
        self.spec_name = settings.feature_spec(spec_name).name
        self.tables = tuple(tables)
        self.enabled = settings.maintenance.enabled
        self.interval_s = settings.maintenance.interval_s
        self.policy = MaintenancePolicy.from_settings(settings)
        self.state_file = settings.home_dir / "maintenance" / f"{self.spec_name}-{group}.json"
        self.cache = ManifestCache()
        self.runs = 0  # by this process
        self.files_removed = 0
        self.last_run_at: float | None = None
        self.last_results: list[TableMaintenance] = []

    def due(self, now: float | None = None) -> bool:
        if not self.enabled:
            return False
        now = time.time() if now is None else now
        last = _read(self.state_file).get("last_run_at")
        if not isinstance(last, int | float):
            # First time here: the clock starts now (a fresh home has nothing to tidy yet).
            _write(self.state_file, {"last_run_at": now, "tables": []})
            return False
        return now - last >= self.interval_s

    def maybe_run(self, lake: Lake | Callable[[], Lake]) -> list[TableMaintenance] | None:
        """Run when due (None when not) on ``lake``, or on one ``lake()`` opens then (closed
        after); never raises."""
        try:
            if not self.due():
                return None
            return self.run(lake)
        except Exception as exc:  # never let the upkeep stop the writing
            log.warning("maintenance: failed (%s: %s)", type(exc).__name__, exc)
            return []

    def run(self, lake: Lake | Callable[[], Lake]) -> list[TableMaintenance]:
        started = time.time()
        _write(self.state_file, {"last_run_at": started, "tables": list(self.tables)})
        if not isinstance(lake, Lake):
            with lake() as own:
                results = maintain(own, self.tables, self.policy, cache=self.cache)
        else:
            results = maintain(lake, self.tables, self.policy, cache=self.cache)
        self.runs += 1
        self.files_removed += sum(r.files_removed for r in results)
        self.last_run_at, self.last_results = started, results
        for r in results:
            log.info(
                "maintenance: %s.%s: %d snapshot(s) expired, %d data file(s) rewritten into %d, "
                "%d file(s) removed; files %d -> %d, %.1f -> %.1f MB (%.2f s)",
                self.spec_name,
                r.table,
                r.snapshots_expired,
                r.data_files_rewritten,
                r.data_files_written,
                r.files_removed,
                r.files_before,
                r.files_after,
                r.bytes_before / 1e6,
                r.bytes_after / 1e6,
                r.seconds,
            )
            for error in r.errors:
                log.warning("maintenance: %s.%s: %s", self.spec_name, r.table, error)
        _write(
            self.state_file,
            {
                "last_run_at": started,
                "tables": list(self.tables),
                "results": [{**r.to_dict(), "plan": None} for r in results],
            },
        )
        return results


_label_upkeep: dict[tuple[str, str, str], AutoMaintainer] = {}


def maintain_label_tables(event: Committed) -> None:
    """The subscriber to label ingestion (runtime.py): the label tables' maintenance, when
    ``maintenance.interval_s`` has passed (best effort), on the ingestion's lake."""
    if not isinstance(event, LabelsCommitted) or event.lake is None:
        return
    lake = event.lake
    key = (str(lake.settings.home_dir), lake.settings.catalog_uri, lake.spec.name)
    if key not in _label_upkeep:
        _label_upkeep[key] = AutoMaintainer(lake.settings, lake.spec.name, LABEL_TABLES, "labels")
    _label_upkeep[key].maybe_run(lake)


def prune_reports(settings: Settings, now: float | None = None) -> list[Path]:
    """Delete the run folders under ``<home>/reports/<spec>/`` (Evidently HTML, summaries) whose
    newest file is older than ``maintenance.keep_reports_days``; the folders deleted. The lake's
    rows about those runs are kept."""
    now = time.time() if now is None else now
    cutoff = now - settings.maintenance.keep_reports_days * 86_400
    root = settings.home_dir / "reports"
    removed = []
    for run in sorted(root.glob("*/*")):
        if not run.is_dir():
            continue
        newest = max((p.stat().st_mtime for p in run.rglob("*")), default=run.stat().st_mtime)
        if newest < cutoff:
            shutil.rmtree(run, ignore_errors=True)
            removed.append(run)
    return removed


def _read(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    data = {**data, "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)
    except OSError:
        log.warning("maintenance: cannot write %s", path, exc_info=True)
