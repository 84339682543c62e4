"""RAFT + reading curriculum (training/raft.py): exact format, answer-only-in-context invariants, golden
chunks from a search function (a fake one over fixed hits: training never opens a knowledge base)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import pytest

from training.raft import (
    DEFAULT_READING_WITH_KB,
    EN_PERSON,
    USER_REPEATS,
    ZH_PERSON,
    build_retrieval_examples,
    counterfactual,
    price_table,
    raft_examples,
    reading_curriculum,
    reading_example,
)
from training.text import ABSTAIN_TEXT, lexical_coverage


@dataclass(frozen=True)
class FakeHit:
    text: str
    title: str | None = None
    heading: str | None = None


HITS = [
    FakeHit("老大是哥哥JIM，今年10岁。", title="家庭", heading="家庭"),
    FakeHit("星光台灯售价199元。", title="商店", heading="商店"),
    FakeHit("发往杭州的订单2天内送达。", title="配送"),
]


def fake_search(question: str) -> list[FakeHit]:
    """The fixed hits ranked by how many of the question's content words they contain (top 3)."""
    return sorted(HITS, key=lambda h: -lexical_coverage(question, h.text))[:3]


ZH_EXAMPLE = [
    {
        "role": "user",
        "content": (
            "资料：\n[1] 通讯录\n采购组负责人：赵一然，分机733。\n客服组负责人：陈默，分机918。\n"
            "仓储组负责人：周航，分机356。\n\n[2] 促销活动\n"
            "- 橙光枕头：打8.5折（立减15%），活动截止10月21日\n"
            "- 云朵花瓶：打9折（立减10%），活动截止9月16日\n"
            "- 云朵雨伞：打8折（立减20%），活动截止9月9日\n\n问题：仓储组的负责人是谁?\n\n"
            "只根据以上资料回答，并用 [编号] 标注出处。资料中没有答案时，回答“不知道”。"
        ),
    },
    {"role": "assistant", "content": "仓储组的负责人是周航。[1]"},
]


def sources_of(prompt: str) -> dict[int, str]:
    body = re.split(r"\n\n(?:问题：|Question: )", prompt)[0].split("\n", 1)[1]
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r"\[(\d+)\][^\n]*\n(.*?)(?=\n\n\[\d+\]|\Z)", body, re.S)
    }


def test_exact_format_of_a_generated_example():
    assert reading_example(random.Random(0), unanswerable=False, lang="zh") == ZH_EXAMPLE


def test_curriculum_answers_exist_only_in_the_cited_source():
    examples = reading_curriculum(400, seed=11)
    assert examples == reading_curriculum(400, seed=11)  # deterministic
    assert examples != reading_curriculum(400, seed=12)
    abstain = [e for e in examples if e[1]["content"] in ABSTAIN_TEXT.values()]
    assert 0.1 < len(abstain) / len(examples) < 0.3
    langs = {
        e[1]["content"] == ABSTAIN_TEXT["zh"] or bool(re.search(r"[\u4e00-\u9fff]", e[1]["content"]))
        for e in examples
    }
    assert langs == {True, False}  # both Chinese and English
    for e in examples:
        prompt, answer = e[0]["content"], e[1]["content"]
        sources = sources_of(prompt)
        if answer in ABSTAIN_TEXT.values():
            continue
        cited = int(re.findall(r"\[(\d+)\]$", answer)[0])
        numbers = re.findall(r"\d+", re.sub(r"\[\d+\]$", "", answer))
        people = [p for p in (*ZH_PERSON, *EN_PERSON) if p in answer]
        assert numbers or people, answer
        assert all(n in sources[cited] for n in numbers + people), (prompt, answer)
        question = re.split(r"问题：|Question: ", prompt)[1].split("\n")[0]
        # the entity asked about is named by exactly one source: no example has two right answers
        subject = answer.split("的")[0] if "的" in answer else None
        if subject and subject in question:
            assert sum(subject in s for s in sources.values()) == 1, (prompt, answer)


def test_raft_uses_the_golden_chunk_among_fictional_distractors():
    pairs = [("老大是谁?", "老大是哥哥JIM。")]
    out = raft_examples(pairs, fake_search, seed=5)
    assert len(out) == 3  # golden chunk + two counterfactual updates
    read, *updates = out
    sources = sources_of(read[0]["content"])
    cited = int(re.findall(r"\[(\d+)\]$", read[1]["content"])[0])
    assert read[1]["content"] == f"老大是哥哥JIM。[{cited}]"
    assert "JIM" in sources[cited] and sum("JIM" in s for s in sources.values()) == 1
    assert "星光台灯" not in read[0]["content"]  # real documents are never used as distractors
    for upd in updates:  # the document changed: the answer follows it, not what was memorised
        answer = upd[1]["content"]
        n = int(re.findall(r"\[(\d+)\]$", answer)[0])
        assert "JIM" not in upd[0]["content"] and "JIM" not in answer
        assert re.sub(r"\[\d+\]$", "", answer) in sources_of(upd[0]["content"])[n]
        assert re.fullmatch(r"老大是哥哥[A-Z]+。\[\d\]", answer), answer


def test_counterfactual_changes_numbers_and_names_only():
    rng = random.Random(0)
    assert counterfactual("老大是哥哥JIM。", rng) == "老大是哥哥MAX。"
    assert counterfactual("哥哥JIM今年10岁。", random.Random(3)) != "哥哥JIM今年10岁。"
    assert counterfactual("老大喜欢吃肉。", rng) is None


def test_build_retrieval_examples_sizes():
    chats = [
        [{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "JIM"}],
        [{"role": "system", "content": "家里有两个孩子。"}],
    ]
    out = build_retrieval_examples(chats, search=None, n_reading=30, seed=1)
    # the complete training set: the user's chats (repeated to keep their exposure), two "the document
    # changed" examples, the curriculum
    assert len(out) == 2 * USER_REPEATS + 2 + 30
    assert out[: 2 * USER_REPEATS] == chats * USER_REPEATS
    assert "JIM" not in out[2 * USER_REPEATS][1]["content"]
    assert build_retrieval_examples(chats, search=None, n_reading=0, seed=1) == chats


def test_build_retrieval_examples_with_a_search_adds_golden_chunks_and_default_curriculum():
    chats = [[{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "老大是哥哥JIM。"}]]
    out = build_retrieval_examples(chats, search=fake_search, n_reading=0, seed=1)
    extra = out[USER_REPEATS:]
    golden = [e for e in extra if "家庭" in e[0]["content"] and "JIM" in e[1]["content"]]
    assert len(golden) == 1  # the chunk that covers the answer, cited
    assert len(extra) == 1 + 2 + DEFAULT_READING_WITH_KB  # golden + two updates + the default curriculum
    # a search that finds nothing relevant adds no golden example
    none = build_retrieval_examples(chats, search=lambda q: [HITS[1]], n_reading=5, seed=1)
    assert not any("JIM" in e[1]["content"] and "家庭" in e[0]["content"] for e in none)


@pytest.mark.parametrize("seed", [0, 1])
def test_unanswerable_questions_name_nothing_in_the_sources(seed: int):
    rng = random.Random(seed)
    for _ in range(50):
        e = reading_example(rng, unanswerable=True)
        q = re.split(r"问题：|Question: ", e[0]["content"])[1].split("\n")[0]
        name = re.sub(
            r"^(How much is the |How long does delivery to |发往)|(多少钱\?| take\?|的订单几天送达\?)$", "", q
        )
        assert name and name not in sources_of(e[0]["content"]).values().__str__(), q


def test_synthetic_tables_come_as_rows_in_the_form_retrieval_indexes_them():
    doc = price_table(random.Random(1), "zh", ["云朵花瓶", "橙光枕头"], set())
    assert doc.source.text == (
        "商品: 云朵花瓶 | 价格: 146元 | 库存: 291\n商品: 橙光枕头 | 价格: 876元 | 库存: 410"
    )
    assert doc.facts[0].answer == "云朵花瓶的价格是146元。"
    en = price_table(random.Random(1), "en", ["cloud vase"], set())
    assert en.source.text == "Product: cloud vase | Price: 146 yuan | Stock: 291"
