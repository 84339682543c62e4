"""Open endpoints (no key): ``/healthz`` (alive), ``/readyz`` (engine + adapters loaded), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.deps import MetricsDep, SettingsDep

router = APIRouter(tags=["health"])
OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    state = getattr(request.app.state, "imprint", None)
    ok = state is not None and await state.engine.ready()
    body = {
        "status": "ready" if ok else "not ready",
        "engine": state.engine.kind if state else None,
        "adapters": state.engine.adapters() if state else [],
        "kb": settings.kb,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def prometheus(metrics: MetricsDep) -> Response:
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
