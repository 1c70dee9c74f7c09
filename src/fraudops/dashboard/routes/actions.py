"""Governance actions: promote, roll back, acknowledge. Each needs a signed-in session, the page's
CSRF token and a reason; each is the governance service the CLI uses, recorded with who and why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from fraudops.dashboard.auth import Session
from fraudops.dashboard.routes.deps import action_session, runtime_of
from fraudops.errors import FraudopsError
from fraudops.runtime import Runtime

router = APIRouter(prefix="/api/actions")

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$"
    ),
]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason
    spec: Name | None = None


class Promote(_Action):
    version: Name


class Rollback(_Action):
    pass


class Acknowledge(_Action):
    alert_id: Name


@contextmanager
def _runtime_for(request: Request, spec: str | None) -> Iterator[Runtime]:
    runtime = runtime_of(request)
    if spec is None or spec == runtime.spec_name:
        yield runtime
        return
    if spec not in runtime.settings.specs:
        raise HTTPException(status_code=422, detail=f"spec: unknown spec {spec!r}")
    with Runtime(runtime.settings, spec) as other:
        yield other


def _governance(name: str) -> Callable[..., Any]:
    try:
        import fraudops.governance as governance
    except ImportError:
        raise HTTPException(
            status_code=503, detail="the governance service is not available in this build"
        ) from None
    function: Callable[..., Any] = getattr(governance, name)
    return function


def _result(value: Any) -> dict[str, Any]:
    if hasattr(value, "to_dict"):
        return dict(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value if isinstance(value, dict) else {"result": value}


# The governance service's refusals by kind (its errors module): bad input, unknown target;
# anything else it refuses (already the champion, nothing to roll back to) is a conflict.
_STATUS = {"ActionInputError": 422, "ActionTargetNotFound": 404}


def _run(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        return {"ok": True, **_result(call())}
    except FraudopsError as exc:
        kinds = [k.__name__ for k in type(exc).__mro__]
        status = next((_STATUS[k] for k in kinds if k in _STATUS), 409)
        raise HTTPException(status_code=status, detail=str(exc)) from None


@router.post("/promote")
def promote(
    body: Promote, request: Request, session: Session = Depends(action_session)
) -> dict[str, Any]:
    action = _governance("promote")
    with _runtime_for(request, body.spec) as runtime:
        version = body.version.removeprefix("v")
        return _run(lambda: action(runtime, version, actor=session.user, reason=body.reason))


@router.post("/rollback")
def rollback(
    body: Rollback, request: Request, session: Session = Depends(action_session)
) -> dict[str, Any]:
    action = _governance("rollback")
    with _runtime_for(request, body.spec) as runtime:
        return _run(lambda: action(runtime, actor=session.user, reason=body.reason))


@router.post("/ack")
def acknowledge(
    body: Acknowledge, request: Request, session: Session = Depends(action_session)
) -> dict[str, Any]:
    action = _governance("acknowledge_alert")
    with _runtime_for(request, body.spec) as runtime:
        return _run(lambda: action(runtime, body.alert_id, actor=session.user, note=body.reason))
