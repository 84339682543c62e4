"""``POST /v1/adapters {"path": DIR}`` (Imprint extra): hot-load a (re)trained adapter folder, no restart."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from service.deps import PipelineDep
from training.adapter import read_adapter

router = APIRouter(tags=["adapters"])
log = logging.getLogger("imprint.service")


class LoadAdapterRequest(BaseModel):
    path: str


@router.post("/v1/adapters")
async def load_adapter(body: LoadAdapterRequest, pipeline: PipelineDep) -> dict[str, Any]:
    adapter = read_adapter(body.path)  # AdapterError (400, param "path") names every problem
    pipeline.check_compatible(adapter)
    await pipeline.engine.add_adapter(adapter.name, adapter.path)
    pipeline.add_adapter(adapter)
    log.info("hot-loaded adapter %s from %s", adapter.name, adapter.path)
    return {"id": adapter.model_id, "name": adapter.name, "created_at": adapter.created_at}
