"""FastAPI router for knowledge bases; mount it on any app (the service does).

    uvicorn --factory indexing.http:create_app      # a standalone KB server, mostly for trying it out

    POST /v1/kb/{name}/reindex            re-scan the KB's remembered paths (incremental); returns the counts
    GET  /v1/kb/{name}/search?q=&k=&mode= hits, best first, with everything needed to cite them

Errors are OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``. KBs are found under
``$IMPRINT_HOME`` and shared per process through :func:`indexing.kb.get_kb`, so models load once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from indexing.kb import MODES, EmbedderMismatchError, KBError, KBLockedError, KBNotFoundError, get_kb
from indexing.readers import ReadError

router = APIRouter(tags=["knowledge bases"])
# A reindex request waits this long for another writer before answering 409.
REINDEX_LOCK_TIMEOUT_S = 30.0


def _error(status: int, message: str, type_: str, param: str | None, code: str) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"message": message, "type": type_, "param": param, "code": code}},
    )


def _kb_error(e: Exception) -> JSONResponse:
    if isinstance(e, KBNotFoundError):
        return _error(404, str(e), "not_found_error", "name", "kb_not_found")
    if isinstance(e, KBLockedError):
        return _error(409, str(e), "conflict_error", None, "kb_locked")
    if isinstance(e, EmbedderMismatchError):
        return _error(409, str(e), "conflict_error", None, "embedder_mismatch")
    if isinstance(e, ReadError):
        return _error(422, str(e), "invalid_request_error", None, "unreadable_document")
    return _error(400, str(e), "invalid_request_error", None, "kb_error")


@router.post("/v1/kb/{name}/reindex")
def reindex(name: str) -> Any:
    """Re-scan the paths the KB was built from; only changed documents are re-embedded."""
    try:
        report = get_kb(name).index(progress=False, lock_timeout=REINDEX_LOCK_TIMEOUT_S)
    except (KBError, ReadError) as e:
        return _kb_error(e)
    return {"object": "kb.reindex", "kb": name, **report.to_dict()}


@router.get("/v1/kb/{name}/search")
def search(name: str, q: str | None = None, k: int = 5, mode: str = "hybrid") -> Any:
    """Hybrid (or dense / bm25) search; each hit has text, score, doc_id, source, heading and span."""
    if not q or not q.strip():
        return _error(
            400,
            "query parameter 'q' is required, e.g. ?q=退货政策",
            "invalid_request_error",
            "q",
            "missing_query",
        )
    if not 1 <= k <= 100:
        return _error(400, f"k must be between 1 and 100, got {k}", "invalid_request_error", "k", "invalid_k")
    if mode not in MODES:
        return _error(
            400,
            f"mode must be one of {', '.join(MODES)}, got {mode!r}",
            "invalid_request_error",
            "mode",
            "invalid_mode",
        )
    try:
        hits = get_kb(name).search(q, k=k, mode=mode)  # type: ignore[arg-type]
    except KBError as e:
        return _kb_error(e)
    return {"object": "list", "kb": name, "query": q, "mode": mode, "data": [h.to_dict() for h in hits]}


def create_app() -> FastAPI:
    app = FastAPI(title="Imprint knowledge bases")
    app.include_router(router)
    return app
