"""``GET /v1/models`` (the routed model first, then the forced names, one per served adapter, and the
embedding model) and ``GET /v1/models/{id}`` (one of them, or a 404 naming ``model``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.deps import PipelineDep
from service.schema import Model, ModelList
from training.errors import NotFound

router = APIRouter(tags=["models"])


def served_models(pipeline: Any) -> list[Model]:
    from service.routes.embeddings import EMBED_MODEL

    return [*pipeline.models(), Model(id=EMBED_MODEL, description="text embeddings (POST /v1/embeddings)")]


@router.get("/v1/models")
async def list_models(pipeline: PipelineDep) -> dict[str, Any]:
    return ModelList(data=served_models(pipeline)).model_dump()


@router.get("/v1/models/{model_id:path}")
async def retrieve_model(model_id: str, pipeline: PipelineDep) -> dict[str, Any]:
    models = served_models(pipeline)
    found = next((m for m in models if m.id == model_id), None)
    if found is None:
        raise NotFound(
            f"model {model_id!r} does not exist; served: {[m.id for m in models]}",
            param="model",
            code="model_not_found",
        )
    return found.model_dump()
