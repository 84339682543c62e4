"""Questions matched by meaning: the cosine of a question to each served adapter's training questions, under
a threshold calibrated for that adapter and the knowledge base's embedder (``training.calibration``).

The calibration runs once per adapter version (on first use, ~1 s: a few hundred short embeddings) and is
reported in ``imprint.decision`` (``semantic_calibration``) and by ``GET /v1/models/{id}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from service.routing import Semantic
from training.adapter import AdapterInfo
from training.calibration import semantic_sets, separating_threshold

# How many of the sources' sentences closest to a question can be about it by meaning (SentenceRelevance).
RELATED_TOP = 2
# A calibrated threshold stays in this band: below it unrelated questions of one domain pass, above it only
# near-copies of the training wording do (which the word match already catches).
CALIBRATED_RANGE = (0.55, 0.92)


@dataclass(frozen=True)
class SemanticCalibration:
    threshold: float | None
    # Closer than 90 % of made-up questions get, but below the threshold: the closest training question is
    # a candidate the adapter must confirm (service.answering asks it both ways and compares).
    floor: float | None
    positives: int
    negatives: int
    positives_passing: float  # share of positives ≥ threshold
    negatives_passing: float  # share of negatives ≥ threshold (false matches)


def _answers(adapter: AdapterInfo) -> list[str] | None:
    """The trained answer of each training question, where the memorisation check recorded them."""
    outcomes = {o["question"]: o["expected"] for o in (adapter.memorization or {}).get("outcomes", [])}
    if not outcomes or any(q not in outcomes for q in adapter.knowledge):
        return None
    return [outcomes[q] for q in adapter.knowledge]


def calibrate(
    adapter: AdapterInfo, vectors: Any, embed: Callable[[Sequence[str]], Any]
) -> SemanticCalibration:
    """The adapter's semantic threshold from its own training questions (``vectors`` = their embeddings)."""
    import numpy as np

    sets = semantic_sets(adapter.knowledge, _answers(adapter))

    def best(pairs: list[tuple[str, list[int]]]) -> list[float]:
        if not pairs:
            return []
        queries = np.asarray(embed([q for q, _ in pairs]), dtype=np.float32)
        return [float((vectors[idx] @ v).max()) for v, (_, idx) in zip(queries, pairs, strict=True)]

    pos, neg = best(sets.positives), best(sets.negatives)
    t = separating_threshold(pos, neg, lo=CALIBRATED_RANGE[0], hi=CALIBRATED_RANGE[1])
    made_up = sorted(neg[len(neg) - sets.made_up :]) if sets.made_up else []
    floor = None
    if made_up and t is not None:  # above 90 % of the made-up questions (one odd one does not set it)
        floor = round(max(CALIBRATED_RANGE[0], made_up[int(0.9 * (len(made_up) - 1))] + 0.01), 4)

    def passing(xs: list[float]) -> float:
        return round(sum(x >= t for x in xs) / len(xs), 3) if xs and t is not None else 0.0

    return SemanticCalibration(
        t, floor if floor is not None and floor < t else None, len(pos), len(neg), passing(pos), passing(neg)
    )


class SemanticMatcher:
    """Embedded training questions and calibrated thresholds per adapter, computed once per version."""

    def __init__(self, embedder: Any, *, fixed: float | None, calibrated: bool) -> None:
        self.embedder = embedder
        self.fixed = fixed  # the configured threshold, or the embedder's measured default
        self.calibrated = calibrated
        # Keyed by the adapter's version, not its name alone: a request planned just before a hot-load
        # may still hold the old version while another already sees the new one (the soak test once
        # matched the new version's questions against the old version's vectors: IndexError).
        self._vectors: dict[tuple[Any, ...], Any] = {}
        self._calibration: dict[tuple[Any, ...], SemanticCalibration] = {}

    @staticmethod
    def _key(adapter: AdapterInfo) -> tuple[Any, ...]:
        return (adapter.name, adapter.created_at, tuple(adapter.knowledge))

    def forget(self, name: str) -> None:
        """A retrained version knows other questions: embed and calibrate again on next use."""
        for cache in (self._vectors, self._calibration):
            for key in [k for k in cache if k[0] == name]:
                del cache[key]

    def embed(self, texts: Sequence[str]) -> Any:
        import numpy as np

        return np.asarray([self.embedder.get_query_embedding(t) for t in texts], dtype=np.float32)

    def threshold(self, adapter: AdapterInfo) -> float | None:
        cal = self.calibration(adapter)
        return cal.threshold if cal is not None and cal.threshold is not None else self.fixed

    def calibration(self, adapter: AdapterInfo) -> SemanticCalibration | None:
        if not self.calibrated or not adapter.knowledge:
            return None
        key = self._key(adapter)
        cal = self._calibration.get(key)
        if cal is None:
            cal = self._calibration[key] = calibrate(adapter, self._known(adapter), self.embed)
        return cal

    def _known(self, adapter: AdapterInfo) -> Any:
        key = self._key(adapter)
        vectors = self._vectors.get(key)
        if vectors is None:
            vectors = self._vectors[key] = self.embed(adapter.knowledge)
        return vectors

    def match(self, question: str, served: Sequence[AdapterInfo]) -> list[Semantic]:
        """Each adapter's closest training question, its cosine and the adapter's threshold (blocking)."""
        q = self.embed([question])[0]
        out = []
        for a in served:
            if not a.knowledge:
                out.append(Semantic(0.0, None, self.fixed))
                continue
            sims = self._known(a) @ q
            i = int(sims.argmax())
            cal = self.calibration(a)
            floor = cal.floor if cal is not None else None
            out.append(Semantic(float(sims[i]), a.knowledge[i], self.threshold(a), floor))
        return out

    def report(self, adapter: AdapterInfo) -> dict[str, Any] | None:
        cal = self._calibration.get(self._key(adapter))
        return asdict(cal) if cal is not None else None


class SentenceRelevance:
    """Which source sentences are about a question BY MEANING: one of the two closest to it by cosine (the
    KB's embedder) that also clears the KB's dense relevance threshold, the bar a retrieved chunk must pass.
    The answer checks (``service.checks.support``) ask it when the sentence stating an answer shares no
    specific word with the question: "流明一共雇了多少人?" is answered by "全公司共有320名员工", "首席执行官"
    by a sentence that says "CEO". The bar alone let other topics through on songguo: "有会员卡的话买书能
    便宜多少?" got the lending limit's "3本" (0.30), "书是从哪个城市的仓库发出来的?" the founders (0.33);
    among the sources' sentences those ranked 5th and 4th, while 41 of the 49 paraphrases' answer
    sentences (lumen, yunque, songguo) are the closest or second-closest sentence of the whole handbook.
    Embeddings are cached per text."""

    def __init__(self, embedder: Any, threshold: float, cache: int = 4096) -> None:
        from functools import lru_cache

        import numpy as np

        self.threshold = threshold
        self._query = lru_cache(maxsize=cache)(lambda t: np.asarray(embedder.get_query_embedding(t)))
        self._text = lru_cache(maxsize=cache)(lambda t: np.asarray(embedder.get_text_embedding(t)))

    def similarity(self, question: str, sentence: str) -> float:
        return float(self._query(question) @ self._text(sentence))

    def __call__(self, question: str, sentences: Sequence[str]) -> set[int]:
        """The indices of the sentences about the question by meaning: the ``RELATED_TOP`` closest, those
        that clear the threshold."""
        scores = [self.similarity(question, s) for s in sentences]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:RELATED_TOP]
        return {i for i in ranked if scores[i] >= self.threshold}
