"""Answer scoring: containment match, abstention (``training.text``'s one phrase list), forbidden strings.

    from eval.scoring import is_correct
    is_correct("老大是哥哥JIM。", ["jim"])              # True: contains (case/whitespace-insensitive)
    is_correct("我不知道。", [])                        # True: expected [] = the right answer is to abstain
    is_correct("台灯199元", ["149"], forbidden=["199"])  # False: a stale value is never right
"""

from __future__ import annotations

from collections.abc import Sequence

from training.text import is_abstention, normalize

__all__ = ["contains_any", "is_abstention", "is_correct"]


def contains_any(answer: str, needles: Sequence[str]) -> bool:
    text = normalize(answer)
    return any(normalize(n) in text for n in needles if n.strip())


def is_correct(answer: str, expected: Sequence[str], *, forbidden: Sequence[str] = ()) -> bool:
    """Correct when the answer contains any expected string and no forbidden one (a stale or wrong value);
    with ``expected == []`` when it abstains."""
    if contains_any(answer, forbidden):
        return False
    if not expected:
        return is_abstention(answer)
    return contains_any(answer, expected)
