"""FastAPI dependencies: routes are thin handlers over these (``Annotated[..., Depends]``).

@router.get("/v1/models", dependencies=[Depends(require_key)])
async def models(pipeline: PipelineDep) -> ...

@router.post("/v1/kb/{name}/reindex", dependencies=[allowed("reindex")])
def reindex(name: ReadableKb) -> ...        # exposed by the server AND readable by the caller's key
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from service.access import Action, Principal, authenticate, require_exposed_kb
from service.config import ServeConfig
from service.jobs.service import JobService
from service.lifecycle.service import Lifecycle
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.redact import PathRedactor
from service.state import ServiceState
from training.errors import Unavailable


def get_settings(request: Request) -> ServeConfig:
    return request.app.state.settings


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_redactor(request: Request) -> PathRedactor:
    return getattr(request.app.state, "redactor", None) or PathRedactor()


def get_state(request: Request) -> ServiceState:
    state: ServiceState | None = getattr(request.app.state, "imprint", None)
    if state is None:
        raise Unavailable("the service is still starting", code="starting")
    return state


SettingsDep = Annotated[ServeConfig, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
StateDep = Annotated[ServiceState, Depends(get_state)]
RedactorDep = Annotated[PathRedactor, Depends(get_redactor)]


def get_pipeline(state: StateDep) -> Pipeline:
    return state.pipeline


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]


def get_jobs(request: Request) -> JobService:
    jobs: JobService | None = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise Unavailable("the service is still starting", code="starting")
    return jobs


JobsDep = Annotated[JobService, Depends(get_jobs)]


def get_lifecycle(request: Request) -> Lifecycle:
    life: Lifecycle | None = getattr(request.app.state, "lifecycle", None)
    if life is None:
        raise Unavailable("the service is still starting", code="starting")
    return life


LifecycleDep = Annotated[Lifecycle, Depends(get_lifecycle)]


async def get_principal(request: Request, settings: SettingsDep) -> Principal:
    """The caller's rights from its bearer key (401 for a missing or wrong key; open without keys)."""
    return authenticate(settings, request.headers.get("authorization"))


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def require_key(principal: PrincipalDep) -> None:
    """Router-level guard: any valid key (full or scoped); what it may do is checked per route."""


def allowed(action: Action) -> Any:
    """``dependencies=[allowed("reindex")]``: 403 naming the right the caller's key lacks."""

    async def check(principal: PrincipalDep) -> None:
        principal.require(action)

    return Depends(check)


def readable_kb(name: str, settings: SettingsDep, principal: PrincipalDep) -> str:
    """The ``{name}`` path parameter of a KB route: 404 unless this server exposes that KB, 403 unless the
    caller's key may read it."""
    require_exposed_kb(settings, name)
    principal.require_read(name)
    return name


ReadableKb = Annotated[str, Depends(readable_kb)]
