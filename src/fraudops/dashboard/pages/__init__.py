"""The dashboard's pages: one module per page, each ``build(runtime, filters) -> PageData``.

Modules are imported by name on first use (``importlib``): a page whose module is not there
yet, or fails to import, is shown as unavailable instead of taking the others down.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from fraudops.dashboard.contracts import Filters, PageData
    from fraudops.runtime import Runtime


class PageBuilder(Protocol):
    def __call__(self, runtime: Runtime, filters: Filters) -> PageData: ...


@dataclass(frozen=True)
class PageInfo:
    name: str
    title: str
    blurb: str


PAGES: dict[str, PageInfo] = {
    p.name: p
    for p in (
        PageInfo("inference", "Inference", "Prediction volume, scores, tiers, latency, money"),
        PageInfo("drift", "Drift", "Drifted features and mature-cohort performance per run"),
        PageInfo("features", "Features", "PSI and KS per feature, reference vs current"),
        PageInfo("models", "Models", "Version timeline, champion vs previous, shadow"),
        PageInfo("labels", "Labels", "Label coverage and maturity by prediction day"),
        PageInfo("alerts", "Alerts", "The alert feed and its deliveries"),
        PageInfo("runs", "Runs", "One monitoring run: features, reports, MLflow run"),
        PageInfo("lookup", "Lookup", "One prediction by inference or transaction id"),
    )
}
DEFAULT_PAGE = "drift"


def builder(page: str) -> PageBuilder:
    """The page's ``build``; KeyError for an unknown page, ImportError when its module is not
    importable (a page still being written)."""
    if page not in PAGES:
        raise KeyError(page)
    module = importlib.import_module(f"{__name__}.{page}")
    build: PageBuilder = module.build
    return build
