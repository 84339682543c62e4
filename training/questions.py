"""The questions file of ``imprint eval``: JSON Lines, one question per line.

    {"question": str, "expected": [str, ...] | {field: value, ...}, "forbidden"?: [str, ...], "kind"?: str,
     "id"?: str}

An answer is correct when it contains any ``expected`` string and none of the ``forbidden`` ones (stale or
wrong values), case-insensitive and whitespace-normalised; ``expected: []`` means the right answer is to
abstain. An OBJECT ``expected`` asks for a JSON answer, scored field by field (``training.scoring``).

    python -m training.questions eval/examples/family/questions.jsonl   # checks a file, counts per kind
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import ConfigError
from training.fileio import read_jsonl_lines


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    question: str
    expected: list[str] | dict[str, Any]  # an object: the answer is JSON, scored per field
    forbidden: list[str] = field(default_factory=list)


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(e, str) for e in value)


def load_questions(path: str | Path) -> list[Question]:
    """Parse a questions file; raises ConfigError listing every bad line with the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"questions: {path} does not exist — pass a JSONL questions file", param="questions"
        )
    problems: list[str] = []
    out: list[Question] = []
    try:
        lines = list(read_jsonl_lines(path))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"questions: {path} is not UTF-8 ({exc.reason}) — save it as UTF-8") from None
    for n, line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not valid JSON ({exc.msg}) — one JSON object per line")
            continue
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("question"), str)
            or not rec["question"].strip()
        ):
            problems.append(f'line {n}: question: missing or not a string — add "question": "..."')
            continue
        expected = rec.get("expected")
        if not _strings(expected) and not (isinstance(expected, dict) and expected):
            problems.append(
                f"line {n}: expected: must be a list of strings ([] = should abstain) or a non-empty "
                "object of the JSON answer's fields"
            )
            continue
        if "forbidden" in rec and not _strings(rec["forbidden"]):
            problems.append(
                f"line {n}: forbidden: must be a list of strings (values a right answer never has)"
            )
            continue
        out.append(
            Question(
                str(rec.get("id") or f"q{n}"),
                str(rec.get("kind") or "default"),
                rec["question"],
                rec["expected"],
                rec.get("forbidden", []),
            )
        )
    if not out and not problems:
        problems.append("file: no questions")
    if problems:
        raise ConfigError(f"{path}:\n  " + "\n  ".join(problems), param="questions")
    return out


if __name__ == "__main__":
    qs = load_questions(sys.argv[1])
    print(dict(Counter(q.kind for q in qs)))
