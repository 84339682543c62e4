"""``POST /v1/adapters {"path": DIR}`` (Imprint extra): hot-load a (re)trained adapter folder, no restart.

The folder must be inside an allowed adapter root (``adapter_roots``, default ``$IMPRINT_HOME/adapters``; a
relative ``path`` is taken inside the first one) and the key must have ``load_adapters``. Loading is
load-then-switch (``Engine.add_adapter``): the new version is loaded beside the serving one and probed, and
only then takes over the name; any failure answers 4xx and leaves the serving version untouched.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.access import MAX_PATH_CHARS, resolve_adapter_path
from service.deps import PipelineDep, RedactorDep, SettingsDep, allowed
from training.adapter import read_adapter

router = APIRouter(tags=["adapters"])
log = logging.getLogger("imprint.service")


class LoadAdapterRequest(BaseModel):
    # A little over PATH_MAX, so resolve_adapter_path can name the limit itself.
    path: str = Field(min_length=1, max_length=2 * MAX_PATH_CHARS)


@router.post("/v1/adapters", dependencies=[allowed("load_adapters")])
async def load_adapter(
    body: LoadAdapterRequest, pipeline: PipelineDep, settings: SettingsDep, redactor: RedactorDep
) -> dict[str, Any]:
    path = resolve_adapter_path(settings, body.path)
    adapter = await asyncio.to_thread(read_adapter, path)  # AdapterError (400, param "path") lists problems
    pipeline.check_compatible(adapter)
    await pipeline.engine.add_adapter(adapter.name, adapter.path)  # 4xx and nothing changed, or switched
    pipeline.add_adapter(adapter)
    log.info("hot-loaded adapter %s from %s", adapter.name, adapter.path)
    return {
        "object": "adapter",
        "id": adapter.model_id,
        "name": adapter.name,
        "created_at": adapter.created_at,
        "path": redactor.text(str(adapter.path)),
    }
