"""Answer scoring shared by eval and the service: containment match and the one abstention detector.

from eval.scoring import is_correct, is_abstention
is_correct("老大是哥哥JIM。", ["jim"])      # True: contains, case-insensitive, whitespace-normalised
is_correct("我不知道。", [])                # True: expected [] means the right answer is to abstain
"""

from __future__ import annotations

import re

# Phrases that mean "I can't answer this". SERVICE's abstention message must contain one of them.
ABSTENTION_PHRASES: tuple[str, ...] = (
    "不知道",
    "不清楚",
    "无法回答",
    "无法确定",
    "没有相关信息",
    "没有找到相关",
    "资料中没有",
    "i don't know",
    "i do not know",
    "i'm not sure",
    "cannot answer",
    "can't answer",
    "no information",
    "not enough information",
)

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower-case, unify full-width/curly apostrophes, collapse runs of whitespace."""
    return _SPACE.sub(" ", text.replace("’", "'").replace("\u3000", " ")).strip().lower()


def is_abstention(answer: str) -> bool:
    text = normalize(answer)
    return any(p in text for p in ABSTENTION_PHRASES)


def is_correct(answer: str, expected: list[str]) -> bool:
    """Correct when the answer contains any expected string; with ``expected == []`` when it abstains."""
    if not expected:
        return is_abstention(answer)
    text = normalize(answer)
    return any(normalize(e) in text for e in expected if e.strip())
