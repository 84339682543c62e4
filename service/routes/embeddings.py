"""``POST /v1/embeddings`` — OpenAI's embeddings endpoint over the knowledge base's embedder (the one that
indexed the documents, ``indexing.embeddings.get_embedder``; the default embedder when no KB is served), so a
client can embed text in the same space the router retrieves in.

    client.embeddings.create(model="imprint-embed", input=["星光台灯多少钱?"], encoding_format="base64")

Vectors are L2-normalised float32; ``encoding_format: "base64"`` sends their little-endian bytes, as OpenAI
does. ``usage`` counts tokens with the served chat model's tokenizer (the embedder's own is not exposed).
Token-id input and ``dimensions`` other than the embedder's are refused (400 naming the field).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
from fastapi import APIRouter

from service.deps import PipelineDep
from service.schema import Embedding, EmbeddingList, EmbeddingRequest, EmbeddingUsage
from training.errors import InvalidInput, NotFound

router = APIRouter(tags=["embeddings"])
EMBED_MODEL = "imprint-embed"


def embedder_of(pipeline: Any) -> Any:
    kb_embedder = getattr(pipeline.kb, "embedder", None)
    if kb_embedder is not None:
        return kb_embedder
    from indexing.embeddings import get_embedder

    return get_embedder()


def texts_of(req: EmbeddingRequest) -> list[str]:
    texts = [req.input] if isinstance(req.input, str) else req.input
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidInput(
            "input: send a string or a list of strings (token-id input needs OpenAI's tokenizer)",
            param="input",
        )
    if any(not t for t in texts):
        raise InvalidInput("input: empty strings cannot be embedded", param="input")
    return texts  # type: ignore[return-value]


@router.post("/v1/embeddings")
async def embeddings(req: EmbeddingRequest, pipeline: PipelineDep) -> dict[str, Any]:
    if req.model != EMBED_MODEL:
        raise NotFound(f"model {req.model!r} is not an embedding model; use {EMBED_MODEL!r}", param="model")
    unknown = sorted(set(req.model_extra or {}))
    if unknown:
        raise InvalidInput(f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0])
    texts = texts_of(req)
    embedder = await asyncio.to_thread(embedder_of, pipeline)
    if req.dimensions not in (None, embedder.dim):
        raise InvalidInput(
            f"dimensions: this embedder makes {embedder.dim}-d vectors and cannot shorten them; "
            "leave 'dimensions' out",
            param="dimensions",
        )
    vectors = await asyncio.to_thread(embedder.encode, texts)
    tokens = sum(len(pipeline.encode(t)) for t in texts)
    data = [Embedding(index=i, embedding=_encode(v, req.encoding_format)) for i, v in enumerate(vectors)]
    usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
    return EmbeddingList(data=data, model=req.model, usage=usage).model_dump()


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    vector = np.asarray(vector, dtype="<f4")
    return base64.b64encode(vector.tobytes()).decode() if encoding == "base64" else vector.tolist()
