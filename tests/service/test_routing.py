"""Routing decisions as pure unit tests: exact routes and reasons — no model, no index, no llama-index."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pytest

from service.routing import (
    AdapterKnowledge,
    RouterConfig,
    Semantic,
    asks_for_fact,
    decide,
    is_newer,
    named_cell,
    named_rows,
    pick_adapter,
)
from tests.conftest import REPO
from training.prompting import cell_of, cell_sentence, focus_row, names_row, row_names
from training.text import best_match, lexical_coverage

TRAINED = "2026-03-01T00:00:00+00:00"
FAMILY = AdapterKnowledge("family", ["老大是谁?", "老二是谁?", "Who is the eldest?"], TRAINED)


@dataclass
class Hit:
    """The fields the router reads (``service.routing.HitLike``), as ``indexing.kb.Hit`` has them."""

    text: str
    score: float
    dense_similarity: float | None
    bm25_score: float | None
    modified: str | None
    doc_id: str = "doc.md"
    metadata: dict = field(default_factory=dict)


def hit(
    text: str,
    dense: float | None = 0.5,
    modified: str = "2026-01-01T00:00:00+00:00",
    score: float = 0.03,
    doc_id: str = "doc.md",
) -> Hit:
    return Hit(
        text=text, score=score, dense_similarity=dense, bm25_score=None, modified=modified, doc_id=doc_id
    )


def test_known_question_without_documents_goes_to_the_adapter_alone():
    d = decide("老大是谁？", [], FAMILY)
    assert (d.route, d.hits) == ("adapter", [])
    assert d.reason == "no relevant documents; adapter knows it (1.00 ~ '老大是谁?')"


def test_similar_wording_is_not_knowledge():
    # "老三" is not "老大": question words alone must not match.
    d = decide("老三是谁?", [], FAMILY)
    assert d.route == "abstain"
    assert d.reason == (
        "no relevant documents (no hits) and the adapter was not trained on it (similarity 0.00 < 0.60)"
    )


def test_relevant_document_gives_context_route_with_only_relevant_hits():
    price = hit("| 星光台灯 | 199元 | 12 |", dense=0.86, doc_id="prices.md")
    noise = hit("退货运费由买家承担。", dense=0.41, doc_id="returns.md")
    d = decide("星光台灯多少钱?", [price, noise], FAMILY)
    assert d.route == "adapter+context"
    assert d.hits == [price]
    assert d.reason == "1 relevant document(s) (dense 0.86 ≥ 0.80)"
    assert d.details["hits"] == [
        {"relevant": True, "why": "dense 0.86 ≥ 0.80"},
        {"relevant": False, "why": "dense 0.41, words 0%"},
    ]


def test_lexical_overlap_alone_makes_a_hit_relevant():
    d = decide("kitty喜欢什么?", [hit("我们家的猫叫kitty，喜欢睡在沙发上。", dense=0.3)], None)
    assert d.route == "context"  # no adapter served → base model with context
    assert d.reason == "1 relevant document(s) (words 100% ≥ 60%)"


def test_fresh_document_beats_what_the_adapter_learned():
    changed = hit("老大现在叫JAMES。", dense=0.9, modified="2026-03-02T08:00:00+00:00")
    d = decide("老大是谁?", [changed], FAMILY)
    assert d.route == "adapter+context" and d.hits == [changed]
    assert d.reason == (
        "adapter knows it (1.00) but 1 relevant document(s) are newer than its training: fresh beats stale"
    )


def test_stable_question_with_old_documents_goes_without_context():
    old = hit("老大是JIM。", dense=0.9, modified="2026-02-01T00:00:00Z")
    d = decide("老大是谁?", [old], FAMILY)
    assert (d.route, d.hits) == ("adapter", [])
    assert (
        d.reason == "adapter knows it (1.00 ~ '老大是谁?'); the 1 relevant document(s) predate its training"
    )


def test_irrelevant_hits_and_unknown_question_abstain():
    d = decide("What is the capital of Peru?", [hit("Refunds within five days.", dense=0.2)], FAMILY)
    assert d.route == "abstain" and d.hits == []
    assert d.reason.startswith("no relevant documents (best hit: dense 0.20, words 0%)")


def test_thresholds_and_max_hits_are_configurable():
    hits = [hit(f"台灯 {i}", dense=0.7, doc_id=f"d{i}") for i in range(5)]
    strict = decide("台灯", hits, None, RouterConfig(dense_threshold=0.95, lexical_threshold=1.01))
    loose = decide("台灯", hits, None, RouterConfig(dense_threshold=0.6, max_context_hits=2))
    assert strict.route == "abstain"
    assert loose.route == "context" and [h.doc_id for h in loose.hits] == ["d0", "d1"]


def test_helpers():
    assert lexical_coverage("星光台灯多少钱?", "星光台灯 199元") == 1.0
    assert lexical_coverage("What is the blue kettle price?", "The blue kettle") == 2 / 3
    # idf-weighted Dice over FAMILY's 3 questions: "eldest" (in 1) weighs 1 + ln(4/2), "one" (in 0) 1 + ln 4
    eldest, one = 1 + math.log(2), 1 + math.log(4)
    score, match = best_match("WHO is the eldest one?", FAMILY.questions)
    assert match == "Who is the eldest?" and score == pytest.approx(2 * eldest / (eldest + one + eldest))
    company = ["流明科技的创始人是谁?", "流明科技的总部在哪里?", "流明的工厂在哪里?"]
    # the company's name is in every question: sharing it does not make another fact the same question
    assert (
        best_match("流明科技的股票代码是多少?", company)[0]
        < 0.6
        <= best_match("流明科技的创始人是哪位?", company)[0]
    )
    assert is_newer("2026-03-02T00:00:00Z", TRAINED) and not is_newer("2026-02-02T00:00:00Z", TRAINED)
    assert is_newer(None, TRAINED) and is_newer("2026-01-01T00:00:00Z", None)  # unknown → documents win


def test_pick_adapter_prefers_the_one_trained_on_the_question():
    pets = AdapterKnowledge("pets", ["kitty喜欢什么?"], TRAINED)
    assert pick_adapter("kitty喜欢什么？", [FAMILY, pets]) is pets
    assert pick_adapter("老大是谁?", [FAMILY, pets]) is FAMILY
    assert pick_adapter("天气如何?", [FAMILY, pets]) is FAMILY  # no match → the default (first)
    assert pick_adapter("天气如何?", []) is None


def test_semantic_match_catches_paraphrases_without_shared_words():
    cfg = RouterConfig(semantic_threshold=0.65)
    paraphrase = "你们家的猫咪叫什么?"  # no content word in common with the training question
    assert decide(paraphrase, [], FAMILY, cfg).route == "abstain"  # words alone: no
    d = decide(paraphrase, [], FAMILY, cfg, Semantic(0.92, "你家猫叫什么名字?"))
    assert d.route == "adapter"
    assert d.reason == "no relevant documents; adapter knows it (0.92 ~ '你家猫叫什么名字?')"
    assert d.details["semantic_similarity"] == 0.92
    assert decide(paraphrase, [], FAMILY, cfg, Semantic(0.58, "x")).route == "abstain"  # below threshold
    assert decide(paraphrase, [], FAMILY, RouterConfig(), Semantic(0.99, "x")).route == "abstain"  # disabled


def test_pick_adapter_uses_semantic_claims():
    pets = AdapterKnowledge("pets", ["kitty喜欢什么?"], TRAINED)
    cfg = RouterConfig(semantic_threshold=0.65)
    sims = [Semantic(0.40, None), Semantic(0.80, "kitty喜欢什么?")]
    assert pick_adapter("那只猫爱玩什么", [FAMILY, pets], cfg, sims) is pets
    assert (
        pick_adapter("那只猫爱玩什么", [FAMILY, pets], cfg, [Semantic(0.4, None), Semantic(0.5, None)])
        is FAMILY
    )


# ── requests that need no fact ───────────────────────────────────────────────────────────────────────────


def test_instructions_and_greetings_need_no_fact_and_are_not_abstained():
    for request in [
        "Reply briefly with OK",
        "翻译成英文：老大是谁?",
        "你好",
        "Summarize: the room is booked.",
    ]:
        d = decide(request, [], AdapterKnowledge("family", ["老大是谁?"]))
        assert d.route == "adapter" and "needs no fact" in d.reason, (request, d)
        assert decide(request, [], None).route == "base"


def test_questions_inside_a_reply_instruction_still_need_facts():
    for request in [
        "Answer in JSON: what is Dad's name?",
        "回答我：爸爸今年多大?",
        "Tell me who the eldest is",
    ]:
        assert asks_for_fact(request).needs_fact, request
        assert decide(request, [], AdapterKnowledge("family", ["老大是谁?"])).route == "abstain"


def test_abstention_on_the_projects_unknown_questions_is_unchanged():
    questions = [
        json.loads(line)
        for path in sorted((REPO / "eval" / "examples").glob("*/questions.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    unknown = [q["question"] for q in questions if q.get("kind") == "unknown"]
    assert len(unknown) >= 6
    for q in unknown:
        assert decide(q, [], AdapterKnowledge("family", ["老大是谁?"])).route == "abstain", q
    assert all(asks_for_fact(q["question"]).needs_fact for q in questions)  # no project question bypasses


def test_a_named_row_comes_without_the_other_rows_of_its_table():
    """ "星光台灯多少钱?" gets 星光台灯's row and the passages naming it, not the rows of other products nor
    passages about something else (their numbers are other facts)."""
    rows = [
        Hit(f"商品: {n} | 价格: {p}元", 0.1, 0.9, None, "2026-03-05T00:00:00Z", metadata={"row_key": n})
        for n, p in (("云朵枕头", 89), ("星光台灯", 199), ("竹纤维毛巾", 29))
    ]
    about = hit("星光台灯本月赠送灯泡。", dense=0.9)
    other = hit("所有台灯保修两年。", dense=0.9)
    d = decide("星光台灯多少钱?", [*rows, other, about], None, RouterConfig(max_context_hits=5))
    assert d.route == "context" and [h.text for h in d.hits] == ["商品: 星光台灯 | 价格: 199元", about.text]
    # A question naming no row keeps every relevant hit.
    assert len(decide("台灯多少钱?", [*rows, other], None).hits) == 3
    # Naming one of the row's columns too: that cell answers, the row comes alone.
    stock = [
        Hit(f"产品: {n} | 标价: {p}元 | 库存: {s}个", 0.1, 0.9, None, None, metadata={"row_key": n})
        for n, p, s in (("PP棉滤芯", 69, 540), ("活性炭滤芯", 129, 310))
    ]
    promo = hit("滤芯年卡：一年内免费更换两次PP棉滤芯，售价366元。", dense=0.9)
    d = decide("PP棉滤芯还有多少库存?", [*stock, promo], None, RouterConfig(max_context_hits=5))
    assert [h.text for h in d.hits] == ["产品: PP棉滤芯 | 标价: 69元 | 库存: 540个"]
    d = decide("PP棉滤芯怎么样?", [*stock, promo], None, RouterConfig(max_context_hits=5))
    assert [h.text for h in d.hits] == [stock[0].text, promo.text]  # no column named: row and passages


def test_a_row_is_named_without_the_qualifier_in_brackets_of_its_key():
    """ "折叠车按天租的会员价是多少?" names the row "折叠车（每天）": the row comes alone, not the handbook's
    monthly pass (59元) that the small model copied, nor the other rows priced per day."""
    rows = [
        Hit(
            f"项目: {n} | 标价: {p}元 | 会员价: {m}元 | 库存: {s}辆",
            0.1,
            0.9,
            None,
            None,
            "prices.md",
            {"row_key": n},
        )
        for n, p, m, s in (("山地车（每天）", 88, 75, 65), ("折叠车（每天）", 49, 42, 120))
    ]
    card = hit("月卡售价59元，自办理之日起30天内不限次数骑行。会员租车一律享受八五折优惠。", dense=0.9)
    d = decide("折叠车按天租的会员价是多少?", [card, *rows], None, RouterConfig(max_context_hits=5))
    assert [h.text for h in d.hits] == [rows[1].text]
    assert named_rows("折叠车按天租的会员价是多少?", rows) == {"折叠车（每天）"}
    # No column named: the row and the passages naming the entity as the question does.
    weekend = hit("周末特惠：周六、周日租折叠车满2天送1天。", dense=0.9)
    d = decide("折叠车怎么样?", [card, *rows, weekend], None, RouterConfig(max_context_hits=5))
    assert [h.text for h in d.hits] == [rows[1].text, weekend.text]
    assert row_names("折叠车（每天）") == ["折叠车（每天）", "折叠车"]
    assert row_names("U(x)") == ["U(x)"]  # "U" alone is too short to name anything
    assert not names_row("山地车多少钱?", "折叠车（每天）")


def test_a_row_shows_the_columns_the_question_names_after_its_key():
    row = "产品: 晨露R1净水器 | 标价: 1599元 | 库存: 230台 | 促销价: 1299元"
    assert focus_row(row, "晨露R1净水器的促销价是多少?") == "产品: 晨露R1净水器 | 促销价: 1299元"
    assert (
        focus_row(row, "晨露R1还有多少库存，标价多少?") == "产品: 晨露R1净水器 | 标价: 1599元 | 库存: 230台"
    )
    assert focus_row(row, "晨露R1净水器多少钱?") == row  # no column named: the whole row
    assert focus_row("产品: A | 标价: 1元", "A的标价?") == "产品: A | 标价: 1元"  # two cells: nothing to cut
    assert focus_row("所有台灯保修两年。", "标价?") == "所有台灯保修两年。"  # prose is not a row
    # No column named, but the question counts in the unit of one column's value: that column.
    bikes = "项目: 电助力车（每小时） | 标价: 15元 | 会员价: 13元 | 库存: 240辆"
    assert focus_row(bikes, "电助力车还有多少辆可以租?") == "项目: 电助力车（每小时） | 库存: 240辆"
    assert focus_row(row, "晨露R1还剩几台?") == "产品: 晨露R1净水器 | 库存: 230台"
    assert focus_row(bikes, "电助力车几元一小时?") == bikes  # two columns in 元: ambiguous, the whole row


def test_a_paraphrase_matched_by_meaning_is_reported_as_such():
    d = decide(
        "你们家排行第一的孩子是谁?",
        [],
        FAMILY,
        RouterConfig(semantic_threshold=0.6),
        Semantic(0.7, "老大是谁?"),
    )
    assert d.route == "adapter" and d.details["matched_by"] == "meaning"
    assert d.details["knowledge_question"] == "老大是谁?"
    assert decide("老大是谁？", [], FAMILY).details["matched_by"] == "words"


def test_a_candidate_paraphrase_goes_to_the_adapter_to_be_confirmed():
    """Closer to a training question than made-up questions get (the floor), under the threshold: the
    adapter, asked in the trained wording, with ``confirm`` for service.answering — also when documents are
    relevant (they are read when the adapter does not confirm), not when they are newer than the adapter."""
    cfg = RouterConfig(semantic_threshold=0.65)
    close = Semantic(0.61, "老大是谁?", threshold=0.77, floor=0.58)
    d = decide("家里排第一的是谁呀?", [], FAMILY, cfg, close)
    assert d.route == "adapter" and d.details["confirm"] is True
    assert d.details["knowledge_question"] == "老大是谁?" and d.details["matched_by"] == "meaning, to confirm"
    assert d.reason == (
        "closest training question 0.61 ~ '老大是谁?' (below 0.77): sent only if the adapter answers the "
        "question as asked the same way; no relevant documents"
    )
    docs = [hit("家中长子名叫张三。", dense=0.9)]
    d = decide("家里排第一的是谁呀?", docs, FAMILY, cfg, close)
    assert d.route == "adapter" and d.details["confirm"] is True and d.hits == []
    assert d.reason.endswith("as asked the same way; 1 relevant document(s) read if not")
    newer = [hit("家中长子名叫张三。", dense=0.9, modified="2026-06-01T00:00:00+00:00")]
    assert decide("家里排第一的是谁呀?", newer, FAMILY, cfg, close).route == "adapter+context"
    # asking about a code or a table row the training question does not name: read the documents
    assert decide("家里排第一的C3是谁呀?", [], FAMILY, cfg, close).route == "abstain"
    row = hit("姓名: 张三 | 排行: 老大", dense=0.9)
    row.metadata = {"row_key": "张三"}
    assert decide("张三家里排第几呀?", [row], FAMILY, cfg, close).route == "adapter+context"
    below = Semantic(0.55, "老大是谁?", threshold=0.77, floor=0.58)
    assert decide("家里排第一的是谁呀?", [], FAMILY, cfg, below).route == "abstain"
    assert decide("家里排第一的是谁呀?", [], None, cfg, close).route == "abstain"  # no adapter
    # the adapter failed that training question in its memorisation check: the documents are read
    failed = AdapterKnowledge("family", FAMILY.questions, TRAINED, missed=frozenset({"老大是谁?"}))
    d = decide("家里排第一的是谁呀?", docs, failed, cfg, close)
    assert d.route == "adapter+context" and "confirm" not in d.details
    # ...and it is named, so its recorded answer can be sent if a document states it (service.answering)
    assert d.details["missed_question"] == "老大是谁?"
    assert decide("家里排第一的是谁呀?", [], failed, cfg, close).route == "abstain"
    assert "missed_question" not in decide("家里排第一的是谁呀?", docs, failed, cfg, below).details
    assert "missed_question" not in decide("家里排第一的是谁呀?", docs, FAMILY, cfg, close).details


def test_a_question_names_one_cell_by_row_and_column_or_unit():
    row = "项目: 折叠车（每天） | 标价: 49元 | 会员价: 42元 | 库存: 120辆"
    assert cell_of(row, "折叠车按天租的会员价是多少?") == ("折叠车（每天）", "会员价", "42元")
    assert cell_of(row, "折叠车还剩几辆?") == ("折叠车（每天）", "库存", "120辆")
    assert cell_of(row, "折叠车多少钱?") is None  # two columns in 元
    assert cell_of(row, "折叠车的标价和会员价?") is None  # two columns named
    assert cell_of(row, "折叠车的会员价什么时候调整?") is None  # asks when, not the value
    assert cell_of("月卡售价59元。", "月卡多少钱?") is None  # prose is no cell
    assert cell_sentence("折叠车（每天）", "会员价", "42元", 1, "zh") == "折叠车（每天）的会员价是42元。[1]"
    assert (
        cell_sentence("Folding bike", "price", "49 yuan", 2, "en")
        == "The price of Folding bike is 49 yuan [2]."
    )
    rows = [
        Hit(r.replace("折叠车", name), 0.1, 0.9, None, None, "prices.md", {"row_key": f"{name}（每天）"})
        for r, name in ((row, "山地车"), (row, "折叠车"))
    ]
    prose = hit("月卡售价59元。", dense=0.9)
    assert named_cell("折叠车按天租的会员价是多少?", [prose, *rows]) == (
        2,
        ("折叠车（每天）", "会员价", "42元"),
    )
    assert named_cell("电动车的会员价是多少?", [prose, *rows]) is None  # no row named
    twins = [
        rows[1],
        Hit(row.replace("每天", "每小时"), 0.1, 0.9, None, None, "p.md", {"row_key": "折叠车（每小时）"}),
    ]
    assert named_cell("折叠车的会员价是多少?", twins) is None  # two rows of one product: which one?
