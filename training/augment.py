"""Deterministic, rule-based paraphrases of user questions (Chinese and English), no model needed.

Knowledge injected by LoRA generalises beyond the trained wording only when the fact is seen in several
wordings (Physics of LMs 3.1; Ovadia et al. 2023). ``--augment N`` adds up to N paraphrased copies of each
training example (same answer).

    python -m training.augment "老大是谁?" "Who is the eldest?"
"""

from __future__ import annotations

import random
import re
import sys
from typing import Any

_CJK = re.compile(r"[\u4e00-\u9fff]")
_Q_END = re.compile(r"[??。.!!\s]+$")

# Word-level substitutions that keep the meaning (applied one at a time).
_ZH_SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("最喜欢", "最爱"),
    ("喜欢", "爱"),
    ("几岁", "多大了"),
    ("叫什么名字", "的名字是什么"),
    ("什么名字", "啥名字"),
    ("几个人", "多少口人"),
    ("平时", "平常"),
    ("做什么", "干什么"),
    ("你家", "你们家"),
    ("是谁", "是哪一位"),
)
# Whole-question frames: {q} is the question without its final punctuation.
_ZH_FRAMES: tuple[str, ...] = ("请问{q}?", "你知道{q}吗?", "我想知道{q}。", "告诉我{q}?", "{q}呀?")
_ZH_WHO = re.compile(r"^(.+?)是谁$")

_EN_FRAMES: tuple[str, ...] = (
    "Please tell me: {q}?",
    "Do you know {lq}?",
    "I'd like to know: {q}?",
    "Quick question: {q}?",
)
_EN_SUBSTITUTIONS: tuple[tuple[str, str], ...] = (
    ("What is", "What's"),
    ("What's", "What is"),
    ("favorite", "favourite"),
    ("How old is", "What is the age of"),
    ("Who is", "Who's"),
)


def _strip(question: str) -> str:
    return _Q_END.sub("", question.strip())


def candidates(question: str) -> list[str]:
    """Every paraphrase the rules produce for ``question``, in a fixed order, without duplicates."""
    q = _strip(question)
    out: list[str] = []
    if _CJK.search(q):
        m = _ZH_WHO.match(q)
        if m:
            out.append(f"谁是{m.group(1)}?")
        for old, new in _ZH_SUBSTITUTIONS:
            if old in q:
                out.append(q.replace(old, new, 1) + "?")
        out.extend(frame.format(q=q) for frame in _ZH_FRAMES)
    else:
        for old, new in _EN_SUBSTITUTIONS:
            if q.startswith(old):
                out.append(new + q[len(old) :] + "?")
        lq = q[0].lower() + q[1:] if q else q
        out.extend(frame.format(q=q, lq=lq) for frame in _EN_FRAMES)
    original = _strip(question)
    unique: list[str] = []
    for c in out:
        if _strip(c) != original and c not in unique:
            unique.append(c)
    return unique


def paraphrase(question: str, n: int, *, seed: int = 0) -> list[str]:
    """Up to ``n`` paraphrases of ``question``; the same (question, n, seed) always gives the same list.

    The first rule-produced paraphrase always comes first (so validation on "one paraphrase per question" is
    stable across seeds); the seed shuffles the rest.
    """
    pool = candidates(question)
    rng = random.Random(f"{seed}:{question}")
    head, tail = pool[:1], pool[1:]
    rng.shuffle(tail)
    return (head + tail)[: max(0, n)]


def augment_examples(
    examples: list[list[dict[str, Any]]], n: int, *, seed: int
) -> list[list[dict[str, Any]]]:
    """The examples followed by up to ``n`` paraphrased copies of each (last user question reworded)."""
    extra: list[list[dict[str, Any]]] = []
    for messages in examples:
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if not users:
            continue
        idx = users[-1]
        for variant in paraphrase(messages[idx]["content"], n, seed=seed):
            copy = [dict(m) for m in messages]
            copy[idx]["content"] = variant
            extra.append(copy)
    return list(examples) + extra


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["老大是谁?", "Who is the eldest?"]:
        print(arg, "→", candidates(arg))
