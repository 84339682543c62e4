"""FastAPI dependencies: routes are thin handlers over these (``Annotated[..., Depends]``).

@router.get("/v1/models", dependencies=[Depends(require_key)])
async def models(pipeline: PipelineDep) -> ...
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from service.config import ServeConfig
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.state import ServiceState
from training.errors import Unauthorized, Unavailable


def get_settings(request: Request) -> ServeConfig:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, "imprint", None)
    if state is None:
        raise Unavailable("the service is still starting", code="starting")
    return state


SettingsDep = Annotated[ServeConfig, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
StateDep = Annotated[ServiceState, Depends(get_state)]


def get_pipeline(state: StateDep) -> Pipeline:
    return state.pipeline


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]


async def require_key(request: Request, settings: SettingsDep) -> None:
    """Bearer key check (no keys configured: open, which ServeConfig allows on loopback only)."""
    if not settings.api_keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if (
        scheme.lower() != "bearer"
        or not token
        or not any(secrets.compare_digest(token, k) for k in settings.api_keys)
    ):
        raise Unauthorized(
            "missing or invalid API key: send 'Authorization: Bearer <key>' with a key from IMPRINT_API_KEYS"
        )
