"""The staleness report: which facts an adapter memorised do documents now contradict?

For each question the adapter was trained on (``imprint.json`` → ``knowledge``), the knowledge base is
searched; documents modified after the adapter was trained that are about the question (they name at least
``MIN_COVERAGE`` of its content words) are read through the serving pipeline (the question + that one
document, answered by the adapter reading it as the router's ``adapter+context`` route does), and the facts
of that answer — numbers and Latin-letter
names/values (``training.text.values``) — are compared with the adapter's own answer:

- ``stale``: the document's answer states a fact the trained answer does not, and the trained answer states
  one the document's does not (11 instead of 10);
- ``consistent``: no newer document about it, or the document's facts are among the trained answer's (a
  document that merely mentions the topic without changing the fact);
- ``unclear``: the document's answer abstains or states no comparable fact.

    report = await staleness(pipeline, adapter_info, kb, kb_name="family", model="imprint-adapter:family")
    # {"adapter", "kb", "checked", "stale": [{question, trained_answer, document_answer, source}], ...}

The router answers stale questions from the documents (``Pipeline.stale``), and ``/metrics`` exports
``imprint_adapter_stale_facts{adapter}``.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

from training.text import is_abstention, lexical_coverage, values

MIN_COVERAGE = 0.5
CITATION = re.compile(r"\[\d+\]")


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.astimezone()


def fresh_hits(hits: list[Any], question: str, trained_at: datetime | None) -> list[Any]:
    """Hits modified after training that are about ``question``."""
    out = []
    for h in hits:
        modified = _time(getattr(h, "modified", None))
        newer = trained_at is None or (modified is not None and modified > trained_at)
        if newer and lexical_coverage(question, h.text) >= MIN_COVERAGE:
            out.append(h)
    return out


def compare(trained: str, document: str) -> str:
    """ "stale", "consistent" or "unclear" (see the module doc)."""
    if is_abstention(document):
        return "unclear"
    doc, mem = set(values(document)), set(values(trained))
    if not doc:
        return "unclear"
    if doc <= mem:
        return "consistent"
    return "stale" if mem - doc else "unclear"


async def ask(pipeline: Any, model: str, question: str, max_tokens: int) -> str:
    from service.schema import ChatCompletionRequest

    req = ChatCompletionRequest(
        model=model, messages=[{"role": "user", "content": question}], max_tokens=max_tokens, temperature=0
    )
    _, result = await pipeline.complete(req)
    return result.text


async def document_answer(
    pipeline: Any, question: str, hit: Any, max_tokens: int, adapter: Any = None
) -> str:
    """The answer to ``question`` from this one document: the adapter reading it (the adapter+context route,
    what the router does with a newer document; a RAFT-trained adapter reads contexts), or the base model."""
    from service.pipeline import MODEL_RAG, Plan
    from service.schema import ChatCompletionRequest

    req = ChatCompletionRequest(
        model=MODEL_RAG,
        messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens,
        temperature=0,
    )
    plan = Plan(MODEL_RAG, "context", "staleness check", adapter, True, question)
    plan.chat = [{"role": "user", "content": question}]
    pipeline.use_context(plan, [hit], "staleness check")
    result = await pipeline.engine.generate(pipeline.generation_request(plan, req))
    return result.text


def source_of(hit: Any, roots: list[str]) -> dict[str, Any]:
    from service.redact import public_source

    return {
        "doc_id": hit.doc_id,
        "source": public_source(str(hit.source), roots),
        "heading": hit.heading or None,
        "modified": hit.modified or None,
    }


async def staleness(
    pipeline: Any, adapter: Any, kb: Any, *, kb_name: str, model: str, max_tokens: int = 48, k: int = 5
) -> dict[str, Any]:
    from service.redact import kb_roots

    trained_at = _time(adapter.created_at)
    roots = kb_roots(kb)
    stale: list[dict[str, Any]] = []
    consistent = unclear = 0
    for question in adapter.knowledge:
        hits = await asyncio.to_thread(kb.search, question, k=k)
        fresh = fresh_hits(list(hits), question, trained_at)
        if not fresh:
            consistent += 1
            continue
        trained = await ask(pipeline, model, question, max_tokens)
        verdicts = []
        for hit in fresh:
            doc = await document_answer(pipeline, question, hit, max_tokens, adapter)
            verdicts.append((compare(trained, doc), doc, hit))
        found = next((v for v in verdicts if v[0] == "stale"), None)
        if found is not None:
            _, doc, hit = found
            stale.append(
                {
                    "question": question,
                    "trained_answer": trained,
                    "document_answer": doc,
                    "source": source_of(hit, roots),
                }
            )
        elif all(v[0] == "consistent" for v in verdicts):
            consistent += 1
        else:
            unclear += 1
    return {
        "object": "adapter.staleness",
        "adapter": adapter.name,
        "kb": kb_name,
        "trained_at": adapter.created_at,
        "checked": len(adapter.knowledge),
        "stale": stale,
        "consistent": consistent,
        "unclear": unclear,
    }
