"""Knowledge-base routes (Imprint extras): re-index changed documents live, and search with citations.

    POST /v1/kb/{name}/reindex            re-scan the KB's remembered paths (incremental); returns the counts
    GET  /v1/kb/{name}/search?q=&k=&mode= hits, best first, with everything needed to cite them

Only the served KB is reachable (plus any the operator lists in ``exposed_kbs``), and only with a key that
may read it (re-index: and ``reindex: true``) — ``service.deps.ReadableKb``. The served KB object itself is
updated (``indexing.kb.get_kb`` shares one per process), so the next question sees the new facts. Indexing
errors become domain errors here (unknown KB → 404, locked → 409, unreadable document → 400), never a 500,
and no response shows an absolute server path (``source`` is relative to the indexed folder).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Query

from indexing.kb import MODES, EmbedderMismatchError, KBError, KBLockedError, KBNotFoundError
from indexing.readers import ReadError
from indexing.registry import get_kb
from service.config import ServeConfig
from service.deps import ReadableKb, RedactorDep, SettingsDep, allowed
from service.redact import PathRedactor, kb_roots, public_source
from training.errors import Conflict, ImprintError, InvalidInput, NotFound

router = APIRouter(tags=["knowledge bases"])
# A reindex request waits this long for another writer before answering 409.
REINDEX_LOCK_TIMEOUT_S = 30.0


@contextmanager
def kb_errors(name: str) -> Iterator[None]:
    """Indexing's exceptions as domain errors (messages are redacted by the error handler)."""
    try:
        yield
    except ImprintError:
        raise
    except KBNotFoundError as exc:
        raise NotFound(str(exc), param="name", code="kb_not_found") from exc
    except KBLockedError as exc:
        raise Conflict(str(exc), code="kb_locked") from exc
    except EmbedderMismatchError as exc:
        raise Conflict(str(exc), code="embedder_mismatch") from exc
    except (ReadError, UnicodeError) as exc:
        raise InvalidInput(
            f"knowledge base {name!r}: a document cannot be read: {exc}", code="unreadable_document"
        ) from exc
    except OSError as exc:  # a document the server may not read (permissions, I/O error)
        where = f" {exc.filename}" if exc.filename else ""
        raise InvalidInput(
            f"knowledge base {name!r}: cannot read{where}: {exc.strerror or exc}; fix the file's "
            "permissions or remove it from the indexed folder, then re-index",
            code="unreadable_document",
        ) from exc
    except KBError as exc:
        raise InvalidInput(str(exc), code="kb_error") from exc


def open_kb(name: str, settings: ServeConfig) -> Any:
    with kb_errors(name):
        return get_kb(name, home=settings.home, chroma_url=settings.chroma_url)


def public_hit(hit: dict[str, Any], roots: list[str], redactor: PathRedactor) -> dict[str, Any]:
    hit = dict(hit, source=public_source(str(hit.get("source", "")), roots))
    if isinstance(hit.get("metadata"), dict) and "source" in hit["metadata"]:
        hit["metadata"] = dict(hit["metadata"], source=hit["source"])
    return redactor.data(hit)


@router.post("/v1/kb/{name}/reindex", dependencies=[allowed("reindex")])
def reindex(name: ReadableKb, settings: SettingsDep, redactor: RedactorDep) -> dict[str, Any]:
    """Re-scan the paths the KB was built from; only changed documents are re-embedded."""
    kb = open_kb(name, settings)
    with kb_errors(name):
        report = kb.index(progress=False, lock_timeout=REINDEX_LOCK_TIMEOUT_S)
    return redactor.data({"object": "kb.reindex", "kb": name, **report.to_dict()})


@router.get("/v1/kb/{name}/search")
def search(
    name: ReadableKb,
    settings: SettingsDep,
    redactor: RedactorDep,
    q: str | None = Query(None, max_length=10_000),
    k: int = Query(5),
    mode: str = Query("hybrid"),
) -> dict[str, Any]:
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
    kb = open_kb(name, settings)
    with kb_errors(name):
        hits = kb.search(q, k=k, mode=mode)  # type: ignore[arg-type]
    roots = kb_roots(kb)
    data = [public_hit(h.to_dict(), roots, redactor) for h in hits]
    return {"object": "list", "kb": name, "query": q, "mode": mode, "data": data}
