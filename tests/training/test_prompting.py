"""The context prompt and citation parsing, with exact strings."""

from __future__ import annotations

from training.prompting import ContextSource, cited_ids, render_context_prompt, strip_markers, with_context
from training.text import ABSTAIN_TEXT, abstain_text, detect_language, is_abstention

SOURCES = [
    ContextSource("星光台灯 199元，库存 12。", title="价格表", heading="本季度"),
    ContextSource("Refunds take five days.", title="Returns", heading="Returns"),
]


def test_chinese_context_prompt_exact():
    assert render_context_prompt("星光台灯多少钱?", SOURCES) == (
        "资料：\n[1] 价格表 — 本季度\n星光台灯 199元，库存 12。\n\n[2] Returns\nRefunds take five days.\n\n"
        "问题：星光台灯多少钱?\n\n只根据以上资料回答，并用 [编号] 标注出处。资料中没有答案时，回答“不知道”。"
    )


def test_english_context_prompt_exact():
    assert render_context_prompt(" How long do refunds take? ", SOURCES[1:]) == (
        "Sources:\n[1] Returns\nRefunds take five days.\n\nQuestion: How long do refunds take?\n\n"
        "Answer only from the sources above and cite them as [n]. "
        'If the sources do not contain the answer, say "I don\'t know".'
    )


def test_with_context_replaces_only_the_last_user_turn():
    msgs = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "老大是谁?"},
        {"role": "assistant", "content": "JIM"},
        {"role": "user", "content": "老二呢?"},
    ]
    out = with_context(msgs, [ContextSource("老二是Mike。")])
    assert out[:3] == msgs[:3] and msgs[3]["content"] == "老二呢?"
    assert out[3]["content"].startswith("资料：\n[1]\n老二是Mike。\n\n问题：老二呢?")


def test_citations_and_language():
    assert cited_ids("199元 [1]。退货见[2][1]，【3】无效 [7]", 3) == [1, 2, 3]
    assert cited_ids("see [1, 2] and [2-3]", 3) == [1, 2, 3]
    assert cited_ids("no markers", 3) == []
    assert strip_markers("199元 [1]。") == "199元。"
    assert detect_language("老大是谁?") == "zh" and detect_language("What does 老大 mean?") == "en"
    assert abstain_text("JIM是谁?") == "不知道。" and abstain_text("Who?") == "I don't know."
    assert is_abstention("我不知道。") and is_abstention("I don't know.") and not is_abstention("JIM")


def test_every_fixed_abstention_counts_as_one():
    """The service's fixed "I don't know" must be recognised by the one abstention list eval scores with."""
    assert all(is_abstention(text) for text in ABSTAIN_TEXT.values())
