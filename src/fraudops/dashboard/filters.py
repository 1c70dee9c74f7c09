"""The query string of every page and data request, read into ``Filters`` or refused by name."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from fraudops.config import Settings
from fraudops.dashboard.contracts import Filters

FILTER_KEYS = ("start", "end", "version", "spec", "feature", "run_id")
MAX_VALUE_CHARS = 200
# Versions are registry numbers; run ids, features: names, never markup or paths.
_NAME = re.compile(r"^[A-Za-z0-9_.:\-]+$")


class FilterError(ValueError):
    """A query value that cannot be used: names the parameter (the web layer's 422)."""

    def __init__(self, parameter: str, message: str) -> None:
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


def parse_time(parameter: str, value: str) -> dt.datetime:
    """An ISO date or date-time; naive ones are UTC."""
    try:
        parsed = (
            dt.datetime.fromisoformat(value)
            if "T" in value or " " in value or len(value) > 10
            else dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
        )
    except ValueError:
        raise FilterError(
            parameter, f"{value!r} is not an ISO date or date-time (e.g. 2027-01-31)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _name(parameter: str, value: str) -> str:
    if not _NAME.match(value):
        raise FilterError(parameter, f"{value!r} is not a valid {parameter}")
    return value


def parse_filters(query: Mapping[str, str], settings: Settings) -> Filters:
    """``Filters`` from a query string; unknown keys are ignored, empty values mean unset."""
    values: dict[str, str] = {}
    for key in FILTER_KEYS:
        raw = query.get(key)
        if raw is None or raw.strip() == "":
            continue
        if len(raw) > MAX_VALUE_CHARS:
            raise FilterError(key, f"longer than {MAX_VALUE_CHARS} characters")
        values[key] = raw.strip()
    start = parse_time("start", values["start"]) if "start" in values else None
    end = parse_time("end", values["end"]) if "end" in values else None
    if start is not None and end is not None and end <= start:
        raise FilterError("end", f"{end.isoformat()} is not after start {start.isoformat()}")
    spec = values.get("spec")
    if spec is not None and spec not in settings.specs:
        known = ", ".join(sorted(settings.specs))
        raise FilterError("spec", f"unknown spec {spec!r} (known: {known})")
    version = values.get("version")
    if version is not None:
        version = _name("version", version.removeprefix("v"))
    return Filters(
        start=start,
        end=end,
        version=version,
        spec=spec,
        feature=_name("feature", values["feature"]) if "feature" in values else None,
        run_id=_name("run_id", values["run_id"]) if "run_id" in values else None,
    )
