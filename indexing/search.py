"""Searching a knowledge base: dense (Chroma), sparse (BM25 over an immutable view), hybrid (z-score fusion).

    imprint search "星光台灯多少钱" --kb shop [--mode hybrid|dense|bm25]     # the command over this module

Used through ``KnowledgeBase.search``; ``pytest tests/indexing/test_search.py`` checks the fusion math and the
view. The alternative fusions (:func:`rrf_fuse`, :func:`convex_fuse`) are here for
``eval/bench/retrieval_quality.py``, which compares them with the shipped one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from indexing.errors import KBError
from indexing.store import INTERNAL_KEYS, Store, StoredChunk
from training.prompting import names_row as names_row_key
from training.text import index_terms

Mode = Literal["hybrid", "dense", "bm25"]
MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
# The one place the default number of hits is written (the search command, the service and RAFT use it).
DEFAULT_K = 5
# Hybrid = z-scored cosine + w * z-scored BM25 over the union of both candidate lists (see zscore_fuse).
# Measured (eval/bench/results/retrieval_quality.md, index_cost.md): BM25 alone misses paraphrases and
# cross-language questions (hit@3 0.63), so its everyday weight is small, 0.3: hybrid keeps dense's
# hit@3 of 0.98 (Chinese 1.00). But when the question names an identifier (a token with a digit that is in
# the index: a model number, an error code, a SKU) dense embeddings blur near-identical documents (hit@1 0.07
# on 2,000 product sheets) and BM25 is decisive (0.90), so there its weight is 1.5. Reciprocal-rank fusion
# did worse on both (0.91-0.96 hit@3, 0.12 on identifiers).
BM25_WEIGHT = 0.3
BM25_WEIGHT_IDENTIFIER = 1.5
RRF_K = 60  # for rrf_fuse, an alternative the benchmark compares
# Table rows whose key (first cell) the question names rank before every other candidate
# ("星光台灯多少钱?" → 星光台灯's row first): not a row of a product whose name embeds nearby, not prose that
# repeats the question's words without the value. Among named rows, and among the rest, the fused score
# decides.
NAMED_ROWS_FIRST = True


def rrf_fuse(rankings: list[list[str]], weights: list[float], k: int = RRF_K) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: ``sum(w / (k + rank))`` over the rankings holding an id."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + weight / (k + rank)
    return fused


def zscore_fuse(cosine: dict[str, float], bm25: dict[str, float], bm25_weight: float) -> dict[str, float]:
    """``z(cosine) + bm25_weight * z(bm25)`` per candidate, z-scores taken over the candidates. Standardising
    puts both signals on one scale whatever the embedder's cosine range (USE: 0.1-0.6, e5: 0.8-0.9)."""

    def z(values: dict[str, float]) -> dict[str, float]:
        arr = np.array(list(values.values()), dtype=np.float64)
        std = float(arr.std()) if len(arr) > 1 else 0.0
        mean = float(arr.mean()) if len(arr) else 0.0
        return {c: (v - mean) / std if std > 0 else 0.0 for c, v in values.items()}

    zc, zb = z(cosine), z(bm25)
    return {c: zc[c] + bm25_weight * zb.get(c, 0.0) for c in cosine}


def convex_fuse(dense: dict[str, float], bm25: dict[str, float], alpha: float) -> dict[str, float]:
    """``(1 - alpha) * dense' + alpha * bm25'``: cosine min-max scaled over the candidates, BM25 divided by
    its max. Scaling per query makes one alpha work for embedders whose cosines live in different ranges."""
    fused: dict[str, float] = {}
    if dense:
        lo, hi = min(dense.values()), max(dense.values())
        for cid, sim in dense.items():
            fused[cid] = (1 - alpha) * ((sim - lo) / (hi - lo) if hi > lo else 1.0)
    top = max(bm25.values(), default=0.0)
    for cid, score in bm25.items():
        fused[cid] = fused.get(cid, 0.0) + (alpha * score / top if top > 0 else 0.0)
    return fused


@dataclass
class Hit:
    text: str
    score: float
    dense_similarity: float | None
    bm25_score: float | None
    doc_id: str
    source: str
    title: str
    heading: str
    start_char: int
    end_char: int
    chunk_id: str
    modified: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_hit(
    cid: str, text: str, md: dict[str, Any], score: float, dense: float | None, bm25: float | None
) -> Hit:
    meta = {k: v for k, v in (md or {}).items() if k not in INTERNAL_KEYS}
    return Hit(
        text=text,
        score=score,
        dense_similarity=dense,
        bm25_score=bm25,
        doc_id=str(meta.get("doc_id", "")),
        source=str(meta.get("source", "")),
        title=str(meta.get("title", "")),
        heading=str(meta.get("heading", "")),
        start_char=int(meta.get("start_char", 0)),
        end_char=int(meta.get("end_char", 0)),
        chunk_id=cid,
        modified=str(meta.get("modified", "")),
        metadata=meta,
    )


# ── the BM25 view ──────────────────────────────────────────────────────────────────────────────────────────
@dataclass(frozen=True)
class View:
    """What searches read: chunks and their BM25 index as of one finished index run (never mutated)."""

    chunks: dict[str, StoredChunk]
    bm25: Any
    ids: list[str]  # BM25 row -> chunk id
    pos: dict[str, int]  # chunk id -> BM25 row
    key: tuple[int, ...] | None  # identity of the chunk store it came from


def build_view(chunks: dict[str, StoredChunk], key: tuple[int, ...] | None) -> View:
    import bm25s

    ids = [cid for cid, ch in chunks.items() if ch.tokens]
    index = bm25s.BM25()
    if ids:
        index.index([chunks[c].tokens for c in ids], show_progress=False)
    return View(chunks, index, ids, {c: i for i, c in enumerate(ids)}, key)


class ViewCache:
    """The current :class:`View` of one KB; rebuilt when the chunk store on disk changes (one stat per
    search), whichever process wrote it. A new view is swapped in whole, so a search running while this
    process re-indexes never sees a half-updated chunk table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.view: View | None = None
        self._lock = threading.Lock()

    def get(self) -> View:
        key = self.store.chunks_key()
        view = self.view
        if view is None or view.key != key:
            with self._lock:
                view = self.view
                if view is None or view.key != key:
                    chunks = self.store.read_chunks()
                    if chunks is None:  # old format or damaged: it is a cache of Chroma
                        chunks = self.store.chunks_from_chroma()
                    view = self.view = build_view(chunks, key)
        return view


# ── searching ──────────────────────────────────────────────────────────────────────────────────────────────
def names_row(query: str, meta: dict[str, Any] | None) -> bool:
    """Whether ``query`` names the entity of this table row (its first cell, e.g. a product)."""
    return names_row_key(query, str((meta or {}).get("row_key") or ""))


def check_filters(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metadata filters must map a field name to one str/int/float/bool value (Chroma's exact match)."""
    if not filters:
        return None
    if not isinstance(filters, dict):
        raise KBError(
            f"filters must be a mapping of field → value, got {type(filters).__name__}", param="filters"
        )
    for key, value in filters.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise KBError(
                f"filters: field name {key!r} is not valid; use a metadata field such as title or category",
                param="filters",
            )
        if isinstance(value, bool | int | float | str) and not (isinstance(value, float) and value != value):
            continue
        raise KBError(
            f"filters.{key}: {value!r} is not a single text, number or true/false value; filters match one "
            "exact value, e.g. title=价格表",
            param=f"filters.{key}",
        )
    return filters


def _where(filters: dict[str, Any] | None) -> dict[str, Any] | None:
    if not filters:
        return None
    clauses = [{k: v} for k, v in filters.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def dense(
    collection: Any, q: np.ndarray, n: int, filters: dict[str, Any] | None, total: int
) -> list[tuple[str, str, dict, float]]:
    """Top ``n`` (chunk id, text, metadata, cosine) from Chroma; ``total``: chunks known to exist."""
    if total == 0:
        return []
    res = collection.query(
        query_embeddings=[q.tolist()],
        n_results=min(n, total),
        where=_where(filters),
        include=["documents", "metadatas", "distances"],
    )
    return [
        (cid, text, meta, 1.0 - float(dist))
        for cid, text, meta, dist in zip(
            res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
        )
    ]


def sparse(
    tokens: list[str], n: int, filters: dict[str, Any] | None, view: View
) -> tuple[list[tuple[str, float]], np.ndarray]:
    """(top ``n`` (chunk id, BM25 score) with score > 0, the score of every chunk by BM25 row)."""
    if not view.ids or not tokens:
        return [], np.zeros(len(view.ids))
    scores = view.bm25.get_scores(tokens)
    if filters:
        mask = np.array(
            [all(view.chunks[c].metadata.get(k) == v for k, v in filters.items()) for c in view.ids]
        )
        scores = np.where(mask, scores, 0.0)
    top = np.argsort(-scores)[:n]
    return [(view.ids[i], float(scores[i])) for i in top if scores[i] > 0], scores


def search(
    query: str,
    *,
    k: int,
    mode: str,
    filters: dict[str, Any] | None,
    view: View,
    collection: Any,
    encode_query: Callable[[str], np.ndarray],
) -> list[Hit]:
    """The ``k`` best chunks for ``query``, best first (see ``KnowledgeBase.search``)."""
    if mode not in MODES:
        raise KBError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}", param="mode")
    filters = check_filters(filters)
    if k <= 0 or not query.strip():
        return []
    pool = max(4 * k, 20)
    tokens = [t for t in index_terms(query) if t in view.bm25.vocab_dict] if view.ids else []
    if mode == "bm25":
        found_sparse, _ = sparse(tokens, k, filters, view)
        return [
            make_hit(c, view.chunks[c].text, view.chunks[c].metadata, s, None, s) for c, s in found_sparse
        ]
    q = encode_query(query)
    # The view's size equals Chroma's after every finished index run; during one Chroma may hold more (a new
    # version next to the old one), which only matters if the view is empty.
    found_dense = dense(collection, q, pool, filters, len(view.chunks) or collection.count())
    if mode == "dense":
        return [make_hit(c, t, m, s, s, None) for c, t, m, s in found_dense[:k]]
    found_sparse, all_bm25 = sparse(tokens, pool, filters, view)
    # Score the union of both candidate lists on both signals: the exact cosine of BM25-only candidates
    # (their vectors fetched from Chroma; one deleted by a running re-index is simply not returned) and the
    # BM25 score of dense-only ones.
    found = {c: (t, m, s) for c, t, m, s in found_dense}
    missing = [c for c, _ in found_sparse if c not in found]
    if missing:
        got = collection.get(ids=missing, include=["documents", "metadatas", "embeddings"])
        for cid, text, meta, emb in zip(
            got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
        ):
            found[cid] = (text, meta, float(np.dot(q, np.asarray(emb, dtype=np.float32))))
    cosine = {c: v[2] for c, v in found.items()}
    bm25 = {c: float(all_bm25[view.pos[c]]) if c in view.pos else 0.0 for c in found}
    weight = BM25_WEIGHT_IDENTIFIER if any(any(ch.isdigit() for ch in t) for t in tokens) else BM25_WEIGHT
    fused = zscore_fuse(cosine, bm25, weight)
    named = {c for c, (_, meta, _) in found.items() if NAMED_ROWS_FIRST and names_row(query, meta)}
    hits = []
    for cid in sorted(fused, key=lambda c: (c not in named, -fused[c]))[:k]:
        text, meta, sim = found[cid]
        hits.append(make_hit(cid, text, meta, fused[cid], sim, bm25[cid]))
    return hits
