"""The hand-written company examples (eval/examples/lumen, yunque, songguo, qingshan, qingchuan): the shape
of data the training and quality benchmarks use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import validate_file
from training.text import fact_values

EXAMPLES = Path(__file__).resolve().parents[2] / "eval" / "examples"
# name → (its documents, how many unknown questions)
COMPANIES = {
    "lumen": (["handbook.md", "prices.md", "service.md"], 4),
    "yunque": (["events.md", "handbook.md", "prices.md"], 6),
    "songguo": (["events.md", "handbook.md", "prices.md"], 6),
    "qingshan": (["events.md", "handbook.md", "prices.md"], 6),
    "qingchuan": (["events.md", "handbook.md", "prices.md"], 6),
}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("name", COMPANIES)
def test_training_file_is_valid_and_seen_questions_are_verbatim(name: str) -> None:
    example = EXAMPLES / name
    report = validate_file(example / "train.jsonl")
    assert report.ok and len(report.examples) == 16 and not report.errors
    questions = _jsonl(example / "questions.jsonl")
    kinds = [q["kind"] for q in questions]
    assert (kinds.count("seen"), kinds.count("table"), kinds.count("unknown")) == (16, 5, COMPANIES[name][1])
    assert 16 <= kinds.count("paraphrase") <= 17
    assert [q["question"] for q in questions if q["kind"] == "seen"] == [
        e.messages[0]["content"] for e in report.examples
    ]
    for q in questions:  # every expected value of a stable fact is in the answer it was trained on
        if q["kind"] == "seen":
            answer = next(
                e.messages[1]["content"] for e in report.examples if e.messages[0]["content"] == q["question"]
            )
            assert any(x in answer for x in q["expected"]), q
    assert all(q["expected"] == [] for q in questions if q["kind"] == "unknown")


@pytest.mark.parametrize("name", COMPANIES)
def test_documents_change_only_the_tables_and_questions_follow_them(name: str) -> None:
    example = EXAMPLES / name
    v1, v2 = example / "docs" / "v1", example / "docs" / "v2"
    assert sorted(p.name for p in v1.iterdir()) == sorted(p.name for p in v2.iterdir()) == COMPANIES[name][0]
    assert (v1 / "handbook.md").read_text("utf-8") == (v2 / "handbook.md").read_text("utf-8")
    handbook = (v1 / "handbook.md").read_text("utf-8")
    for e in validate_file(example / "train.jsonl").examples:  # the 16 facts are in the handbook
        answer = e.messages[1]["content"]
        values = fact_values(answer)  # its numbers and codes, else its first or last words
        if values:
            assert all(v.lower() in handbook.lower() for v in values), answer
        else:
            assert any(tok in handbook for tok in (answer.rstrip("。")[-4:], answer[:4])), answer
    old = [q for q in _jsonl(example / "questions.jsonl") if q["kind"] == "table"]
    new = _jsonl(example / "questions_v2.jsonl")
    assert [q["question"] for q in old] == [q["question"] for q in new] and len(old) == 5
    prices_v1, prices_v2 = (v1 / "prices.md").read_text("utf-8"), (v2 / "prices.md").read_text("utf-8")
    for q1, q2 in zip(old, new, strict=True):
        # v1's answer is stale against v2 and the other way round
        assert set(q1["forbidden"]) & set(q2["expected"]) and set(q2["forbidden"]) & set(q1["expected"])
        assert any(x in prices_v1 for x in q1["expected"]) and any(x in prices_v2 for x in q2["expected"])
        for q in (q1, q2):  # a forbidden value never hides inside an expected one
            assert not any(f in x for f in q["forbidden"] for x in q["expected"]), q
