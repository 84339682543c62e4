"""Browsing knowledge bases (Imprint extras) — what the web console's Knowledge bases panel lists:

    GET /v1/kb                       the KBs this key may read on this server, with their counts
    GET /v1/kb/{name}/documents      every document: source, title, modified time and its chunks

Same reach as ``service.routes.kb`` (served KB + ``exposed_kbs``, readable by the key); sources are shown
relative to the indexed folder, never as absolute server paths.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Query

from indexing.registry import list_kbs
from service.access import kb_exposed
from service.deps import PrincipalDep, ReadableKb, RedactorDep, SettingsDep
from service.redact import kb_roots, public_source
from service.routes.kb import kb_errors, open_kb

router = APIRouter(tags=["knowledge bases"])


@router.get("/v1/kb")
def list_knowledge_bases(settings: SettingsDep, principal: PrincipalDep) -> dict[str, Any]:
    with kb_errors("*"):
        manifests = list_kbs(settings.home)
    data = [
        {
            "id": m["name"],
            "object": "kb",
            "served": m["name"] == settings.kb,
            "embedder": m.get("embedder"),
            "documents": m.get("documents", 0),
            "chunks": m.get("chunks", 0),
            "created": m.get("created"),
            "updated": m.get("updated"),
        }
        for m in manifests
        if kb_exposed(settings, m["name"]) and principal.may_read(m["name"])
    ]
    data.sort(key=lambda k: (not k["served"], k["id"]))
    return {"object": "list", "data": data}


def chunk_object(cid: str, chunk: Any) -> dict[str, Any]:
    md = chunk.metadata
    return {
        "id": cid,
        "heading": str(md.get("heading", "")),
        "start_char": int(md.get("start_char", 0)),
        "end_char": int(md.get("end_char", 0)),
        "text": chunk.text,
    }


@router.get("/v1/kb/{name}/documents")
def documents(
    name: ReadableKb,
    settings: SettingsDep,
    redactor: RedactorDep,
    limit: int = Query(1000, ge=1, le=10000),
) -> dict[str, Any]:
    kb = open_kb(name, settings)
    with kb_errors(name):
        chunks = kb.views.get().chunks
    roots = kb_roots(kb)
    by_doc: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for cid, chunk in chunks.items():
        by_doc[chunk.doc_id].append((cid, chunk))
    docs = []
    for doc_id, items in by_doc.items():
        items.sort(key=lambda it: int(it[1].metadata.get("start_char", 0)))
        md = items[0][1].metadata
        docs.append(
            {
                "id": doc_id,
                "object": "kb.document",
                "source": public_source(str(md.get("source", "")), roots),
                "title": str(md.get("title", "")),
                "modified": str(md.get("modified", "")),
                "chunks": [chunk_object(cid, c) for cid, c in items],
            }
        )
    docs.sort(key=lambda d: (d["source"], d["id"]))
    return redactor.data({"object": "list", "kb": name, "data": docs[:limit], "has_more": len(docs) > limit})
