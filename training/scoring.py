"""Answer scoring: containment match, abstention (``training.text``'s one phrase list), forbidden strings.

    from training.scoring import is_correct
    is_correct("老大是哥哥JIM。", ["jim"])              # True: contains (case/whitespace-insensitive)
    is_correct("我不知道。", [])                        # True: expected [] = the right answer is to abstain
    is_correct("台灯199元", ["149"], forbidden=["199"])  # False: a stale value is never right
    field_scores('{"name": "JIM", "age": 10}', {"name": "jim", "age": 10})  # {"name": True, "age": True}

An OBJECT ``expected`` means a JSON answer: the answer is parsed as JSON and each expected field's value must
be contained in the answer's value of that field (the same containment rule, on the value's text); an answer
that is not a JSON object, or lacks the field, gets that field wrong. It is correct when every field is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from training.text import is_abstention, normalize

__all__ = ["contains_any", "field_scores", "is_abstention", "is_correct"]


def contains_any(answer: str, needles: Sequence[str]) -> bool:
    text = normalize(answer)
    return any(normalize(n) in text for n in needles if n.strip())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def field_scores(answer: str, expected: Mapping[str, Any]) -> dict[str, bool]:
    """Per expected field: does the JSON answer's value of that field contain the expected value?"""
    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return dict.fromkeys(expected, False)
    return {k: k in parsed and contains_any(_text(parsed[k]), [_text(v)]) for k, v in expected.items()}


def is_correct(
    answer: str, expected: Sequence[str] | Mapping[str, Any], *, forbidden: Sequence[str] = ()
) -> bool:
    """Correct when the answer contains any expected string and no forbidden one (a stale or wrong value);
    with ``expected == []`` when it abstains; with an object ``expected`` when every field is right."""
    if contains_any(answer, forbidden):
        return False
    if isinstance(expected, Mapping):
        return all(field_scores(answer, expected).values())
    if not expected:
        return is_abstention(answer)
    return contains_any(answer, expected)
