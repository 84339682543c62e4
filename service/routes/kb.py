"""Knowledge-base routes (Imprint extras): re-index changed documents live, and search with citations.

    POST /v1/kb/{name}/reindex            re-scan the KB's remembered paths (incremental); returns the counts
    GET  /v1/kb/{name}/search?q=&k=&mode= hits, best first, with everything needed to cite them

KBs are found under ``$IMPRINT_HOME`` and shared per process (``indexing.kb.get_kb``), so the served KB object
itself is updated and the next question sees the new facts. Domain errors (unknown KB → 404, locked → 409,
bad mode → 400) are mapped by ``service.errors`` like every other route.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from indexing.kb import MODES, get_kb
from training.errors import InvalidInput

router = APIRouter(tags=["knowledge bases"])
# A reindex request waits this long for another writer before answering 409.
REINDEX_LOCK_TIMEOUT_S = 30.0


@router.post("/v1/kb/{name}/reindex")
def reindex(name: str) -> dict[str, Any]:
    """Re-scan the paths the KB was built from; only changed documents are re-embedded."""
    report = get_kb(name).index(progress=False, lock_timeout=REINDEX_LOCK_TIMEOUT_S)
    return {"object": "kb.reindex", "kb": name, **report.to_dict()}


@router.get("/v1/kb/{name}/search")
def search(name: str, q: str | None = None, k: int = Query(5), mode: str = Query("hybrid")) -> dict[str, Any]:
    """Hybrid (or dense / bm25) search; each hit has text, score, doc_id, source, heading and span."""
    if not q or not q.strip():
        raise InvalidInput(
            "query parameter 'q' is required, e.g. ?q=退货政策", param="q", code="missing_query"
        )
    if not 1 <= k <= 100:
        raise InvalidInput(f"k must be between 1 and 100, got {k}", param="k", code="invalid_k")
    if mode not in MODES:
        raise InvalidInput(
            f"mode must be one of {', '.join(MODES)}, got {mode!r}", param="mode", code="invalid_mode"
        )
    hits = get_kb(name).search(q, k=k, mode=mode)  # type: ignore[arg-type]
    return {"object": "list", "kb": name, "query": q, "mode": mode, "data": [h.to_dict() for h in hits]}
