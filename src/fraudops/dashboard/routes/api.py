"""Data routes: a page's ``PageData`` as JSON, its tables as CSV, a lookup, the lake's state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from fraudops.dashboard.auth import Session
from fraudops.dashboard.contracts import PageData
from fraudops.dashboard.filters import FilterError
from fraudops.dashboard.pages import PAGES, builder
from fraudops.dashboard.pages.lookup import LookupInputError, lookup
from fraudops.dashboard.pages.runs import report_files
from fraudops.dashboard.routes.deps import api_session, csv_text, filters_of, runtime_of
from fraudops.dashboard.store import lake_state, small_table

router = APIRouter()


def page_data(request: Request, page: str) -> PageData:
    if page not in PAGES:
        raise HTTPException(status_code=404, detail=f"no page {page!r}")
    filters = filters_of(request)  # 422 before anything is read
    try:
        build = builder(page)
    except ImportError:
        raise HTTPException(
            status_code=503, detail=f"page {page!r} is not available in this build"
        ) from None
    return build(runtime_of(request), filters)


def _table_csv(data: PageData, key: str, filename: str) -> Response:
    tables = {t["key"]: t for t in data.to_dict()["tables"]}
    if key not in tables:
        raise HTTPException(status_code=404, detail=f"page {data.page!r} has no table {key!r}")
    table = tables[key]
    return Response(
        csv_text(table["columns"], table["rows"]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/api/page/{page}")
def page_json(page: str, request: Request, _: Session = Depends(api_session)) -> dict[str, Any]:
    return page_data(request, page).to_dict()


@router.get("/api/page/{page}/table/{key}.csv")
def page_table_csv(
    page: str, key: str, request: Request, _: Session = Depends(api_session)
) -> Response:
    return _table_csv(page_data(request, page), key, f"{page}-{key}.csv")


def _lookup(request: Request, value: str | None) -> PageData:
    filters = filters_of(request)
    try:
        return lookup(runtime_of(request), value or "", filters.spec)
    except LookupInputError as exc:
        raise FilterError("id", str(exc).removeprefix("id: ")) from None


@router.get("/api/lookup")
def lookup_json(
    request: Request, id: str | None = None, _: Session = Depends(api_session)
) -> dict[str, Any]:
    return _lookup(request, id).to_dict()


@router.get("/api/lookup/table/{key}.csv")
def lookup_table_csv(
    key: str, request: Request, id: str | None = None, _: Session = Depends(api_session)
) -> Response:
    return _table_csv(_lookup(request, id), key, f"lookup-{key}.csv")


@router.get("/api/state")
def state(request: Request, _: Session = Depends(api_session)) -> dict[str, Any]:
    """Cheap (no data file read): the page polls it and redraws when the token changes."""
    filters = filters_of(request)
    return lake_state(runtime_of(request), filters.spec).to_dict()


@router.get("/reports/{run_id}/{name}")
def report_file(
    run_id: str, name: str, request: Request, _: Session = Depends(api_session)
) -> Response:
    """A file of a run's report folder, read-only; only files the run's folder lists (under the
    home's reports folder) are served, so no path leads anywhere else."""
    filters = filters_of(request)
    runtime = runtime_of(request)
    runs = small_table(runtime, "monitoring_runs", filters.spec)
    match = runs[runs["run_id"] == run_id]
    if match.empty:
        raise HTTPException(status_code=404, detail=f"no monitoring run {run_id!r}")
    files = {p.name: p for p in report_files(runtime, match["report_path"].iloc[-1])}
    path: Path | None = files.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"run {run_id!r} has no report {name!r}")
    media = "text/html" if path.suffix == ".html" else "application/json"
    # Sandboxed: the report's scripts run in an origin of their own, away from the session.
    return FileResponse(
        path, media_type=media, headers={"Content-Security-Policy": "sandbox allow-scripts"}
    )


@router.get("/healthz")
def healthz() -> JSONResponse:
    """Up; and whether the Lookup page's transaction-id index is built (``warming`` until then:
    a lookup by transaction id still answers, by a full scan)."""
    from fraudops.dashboard.lookup_index import indexed_rows

    rows = indexed_rows()
    return JSONResponse(
        {"status": "ok", "lookup_index": "warming" if rows is None else "ready", "indexed": rows}
    )
