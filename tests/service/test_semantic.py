"""Matching by meaning under a threshold calibrated on the adapter's own training questions
(service/semantic.py), with the real default embedder on the lumen example: the threshold separates the
adapter's questions from questions about other facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.questions import load_questions
from service.semantic import CALIBRATED_RANGE, SemanticMatcher
from training.adapter import AdapterInfo

LUMEN = Path(__file__).resolve().parents[2] / "eval" / "examples" / "lumen"


@pytest.fixture(scope="module")
def lumen() -> AdapterInfo:
    rows = [json.loads(line)["messages"] for line in (LUMEN / "train.jsonl").read_text("utf-8").splitlines()]
    return AdapterInfo(
        name="lumen",
        base_model="tiny-phi3",
        chat_template="{{ messages }}",
        knowledge=[m[-2]["content"] for m in rows],
        memorization={
            "outcomes": [{"question": m[-2]["content"], "expected": m[-1]["content"]} for m in rows]
        },
    )


@pytest.fixture(scope="module")
def matcher() -> SemanticMatcher:
    from indexing.embeddings import get_embedder

    return SemanticMatcher(get_embedder(None), fixed=0.65, calibrated=True)


def test_the_calibrated_threshold_separates_its_own_questions_from_other_facts(lumen, matcher) -> None:
    cal = matcher.calibration(lumen)
    assert cal is not None and cal.threshold is not None
    assert CALIBRATED_RANGE[0] <= cal.threshold <= CALIBRATED_RANGE[1]
    assert cal.positives == 2 * len(lumen.knowledge) and cal.negatives == len(lumen.knowledge) + 24
    assert cal.positives_passing >= 0.9 and cal.negatives_passing <= 0.1
    assert matcher.threshold(lumen) == cal.threshold and matcher.report(lumen)["threshold"] == cal.threshold


def test_held_out_unknown_questions_stay_below_it_and_training_questions_above(lumen, matcher) -> None:
    """The benchmark's hand-written unknown questions were never used for calibration."""
    unknown = [q.question for q in load_questions(LUMEN / "questions.jsonl") if q.kind == "unknown"]
    for q in unknown:
        [m] = matcher.match(q, [lumen])
        assert m.similarity < m.threshold, (q, m)
    [m] = matcher.match(lumen.knowledge[3], [lumen])
    assert m.question == lumen.knowledge[3] and m.similarity > 0.99


def test_without_calibration_the_fixed_threshold_applies(lumen) -> None:
    from indexing.embeddings import get_embedder

    fixed = SemanticMatcher(get_embedder(None), fixed=0.7, calibrated=False)
    assert (
        fixed.calibration(lumen) is None and fixed.match("流明科技的总部在哪里?", [lumen])[0].threshold == 0.7
    )


def test_sentence_relevance_lets_a_paraphrase_through_and_not_another_topic() -> None:
    """With the real embedder and its dense relevance threshold: a sentence in other words is about the
    question; the same sentence is not about a question on another topic, so its number proves nothing."""
    from indexing.embeddings import RELEVANCE_THRESHOLDS, canonical_name, get_embedder
    from service.checks import support
    from service.semantic import SentenceRelevance

    embedder = get_embedder(None)
    related = SentenceRelevance(embedder, RELEVANCE_THRESHOLDS[canonical_name(embedder.model_name)])
    staff = ["流明科技成立于2011年，由周明远和林若溪共同创立。现任CEO是陈嘉禾，全公司共有320名员工。"]
    assert support("流明一共雇了多少人?", "流明一共有320名员工。", staff, related).ok
    assert support("现在担任流明首席执行官的是哪位?", "是陈嘉禾。", staff, related).ok
    assert not support("流明科技的股票代码是多少?", "股票代码是320。", staff, related).ok
    assert not support("流明在上海有几家门店?", "流明在上海有320家门店。", staff, related).ok


def test_two_versions_of_one_adapter_never_share_their_vectors(lumen, matcher) -> None:
    """A request planned before a hot-load still holds the old version while the next one holds the new:
    each is matched against its own questions (the soak test once matched a 2-question version against
    the cached vectors of a 16-question one: IndexError, a 500)."""
    small = lumen.model_copy(update={"knowledge": lumen.knowledge[:2], "created_at": "2026-11-27T00:00:00Z"})
    question = lumen.knowledge[-1]
    for first, second in ((lumen, small), (small, lumen)):
        matcher.forget("lumen")
        matcher.match(question, [first])
        got = matcher.match(question, [second])[0]
        assert got.question in second.knowledge
    assert matcher.match(question, [lumen])[0].question == question


def test_an_adapter_served_without_a_knowledge_base_is_still_matched_by_meaning(lumen) -> None:
    """No KB, no KB embedder: the default embedder matches paraphrases (by words alone, the family demo's
    routed model refused all ten of its paraphrases)."""
    from service.config import ServeConfig
    from service.pipeline import semantic_matcher
    from service.state import router_config

    router = router_config(ServeConfig(), None)
    assert router.semantic_calibration and router.semantic_threshold is not None  # the default embedder's
    matcher = semantic_matcher(None, router)
    assert matcher is not None
    got = matcher.match("流明一共雇了多少人?", [lumen])[0]
    # the closest training question, and close enough to be put to the adapter (a candidate paraphrase)
    assert got.question == "流明科技有多少名员工?" and got.floor is not None and got.similarity >= got.floor
