"""``GET /v1/models``: the routed model first, then the forced names and one per served adapter."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.deps import PipelineDep
from service.schema import ModelList

router = APIRouter(tags=["models"])


@router.get("/v1/models")
async def list_models(pipeline: PipelineDep) -> dict[str, Any]:
    return ModelList(data=pipeline.models()).model_dump()
