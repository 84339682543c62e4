"""The adapter registry over HTTP (Imprint extra; ``service.lifecycle``): named adapters, their versions,
which one is promoted, and promoting or rolling back — hot on this replica, on the others within a poll.

    GET  /v1/adapters                       names, versions, promoted version, scores, promotion history
    POST /v1/adapters/{name}/promote        {"version": N, "reason"?: "…"}      (key right: load_adapters)
    POST /v1/adapters/{name}/rollback       {"reason"?: "…"}  back to the previously promoted version
    GET  /v1/adapters/{name}/staleness?kb=KB   trained facts that newer documents contradict

    httpx.post(f"{url}/v1/adapters/family/promote", json={"version": 2}, headers=auth)
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from service.access import require_exposed_kb
from service.deps import LifecycleDep, PipelineDep, PrincipalDep, SettingsDep, allowed
from service.lifecycle.registry import AdapterNameRecord, AdapterVersionRecord, PromotionRecord, Registry
from training.errors import InvalidInput, NotFound

router = APIRouter(tags=["adapters"])


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    reason: str = Field("", max_length=500)


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=500)


def version_object(v: AdapterVersionRecord, promoted: int | None) -> dict[str, Any]:
    return {
        "object": "adapter.version",
        "version": v.version,
        "promoted": v.version == promoted,
        "created_at": int(v.created_at),
        "fine_tuning_job_id": v.job_id,
        "base_model": v.base_model,
        "data_sha256": v.data_sha256,
        "metrics": v.metrics,
        "scores": v.scores,
    }


def history_object(h: PromotionRecord) -> dict[str, Any]:
    return {
        "action": h.action,
        "version": h.version,
        "from_version": h.from_version,
        "reason": h.reason,
        "created_at": round(h.created_at, 3),
    }


def adapter_object(registry: Registry, row: AdapterNameRecord, served: int | None) -> dict[str, Any]:
    return {
        "object": "adapter",
        "id": f"imprint-adapter:{row.name}",
        "name": row.name,
        "promoted_version": row.promoted,
        "served_version": served,  # what this replica answers with (the others catch up within a poll)
        "previous_versions": row.previous,
        "versions": [version_object(v, row.promoted) for v in registry.versions(row.name)],
        "history": [history_object(h) for h in registry.history(row.name)],
    }


def _listing(life: Any) -> dict[str, Any]:
    reg = life.registry
    data = [adapter_object(reg, row, life.serving.versions.get(row.name)) for row in reg.names()]
    return {"object": "list", "data": data}


@router.get("/v1/adapters")
async def list_registry(life: LifecycleDep) -> dict[str, Any]:
    return await asyncio.to_thread(_listing, life)


@router.get("/v1/adapters/{name}")
async def retrieve(name: str, life: LifecycleDep) -> dict[str, Any]:
    row = await asyncio.to_thread(life.registry.name, name)
    return await asyncio.to_thread(adapter_object, life.registry, row, life.serving.versions.get(name))


@router.post("/v1/adapters/{name}/promote", dependencies=[allowed("load_adapters")])
async def promote(name: str, body: PromoteRequest, life: LifecycleDep) -> dict[str, Any]:
    row = await life.promote(name, body.version, reason=body.reason or "promoted by request")
    return await asyncio.to_thread(adapter_object, life.registry, row, life.serving.versions.get(name))


@router.post("/v1/adapters/{name}/rollback", dependencies=[allowed("load_adapters")])
async def rollback(name: str, life: LifecycleDep, body: RollbackRequest | None = None) -> dict[str, Any]:
    reason = (body.reason if body else "") or "rolled back by request"
    row = await life.rollback(name, reason=reason)
    return await asyncio.to_thread(adapter_object, life.registry, row, life.serving.versions.get(name))


@router.get("/v1/adapters/{name}/staleness")
async def staleness(
    name: str,
    life: LifecycleDep,
    pipeline: PipelineDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    kb: str | None = None,
) -> dict[str, Any]:
    served = str(getattr(pipeline.kb, "name", "")) if pipeline.kb is not None else None
    kb = kb or served
    if not kb:
        raise InvalidInput("kb: name the knowledge base to check against (?kb=NAME)", param="kb")
    principal.require_read(kb)
    if kb == served:
        store = pipeline.kb
    else:
        from indexing.registry import get_kb

        try:
            require_exposed_kb(settings, kb)
        except NotFound as exc:
            raise NotFound(exc.message, param="kb", code=exc.code) from None
        store = await asyncio.to_thread(get_kb, kb)
    return await life.staleness(name, kb, store)
