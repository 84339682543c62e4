"""Deterministic paraphrase augmentation, and that no hand-written eval paraphrase is one of its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.augment import augment_examples, candidates, paraphrase
from training.data import validate_file

EXAMPLES = Path(__file__).resolve().parents[2] / "eval" / "examples"


def test_paraphrases_are_deterministic_distinct_and_keep_the_subject() -> None:
    first = paraphrase("老大是谁?", 4, seed=3)
    assert first == paraphrase("老大是谁?", 4, seed=3)
    assert len(first) == 4 and len(set(first)) == 4 and "老大是谁?" not in first
    assert all("老大" in p for p in first)
    assert "谁是老大?" in candidates("老大是谁?")
    assert paraphrase("老大是谁?", 1, seed=0) == paraphrase("老大是谁?", 1, seed=99)  # stable first choice
    assert "哥哥多大了?" in candidates("哥哥几岁?")
    english = candidates("What is the price of tea?")
    assert "What's the price of tea?" in english and len(english) >= 3
    examples = [[{"role": "user", "content": "老二是谁?"}, {"role": "assistant", "content": "Mike"}]]
    out = augment_examples(examples, 2, seed=0)
    assert len(out) == 3 and out[0] == examples[0]
    assert all(e[1]["content"] == "Mike" for e in out) and out[1][0]["content"] != "老二是谁?"


@pytest.mark.parametrize("example", ["family", "lumen", "yunque", "songguo", "qingshan", "qingchuan"])
def test_eval_paraphrases_are_hand_written_not_produced_by_augment(example: str) -> None:
    """Paraphrase accuracy would be inflated if --augment produced the eval paraphrases verbatim."""
    folder = EXAMPLES / example
    generated = {
        c
        for e in validate_file(folder / "train.jsonl").examples
        for c in candidates(e.messages[0]["content"])
    }
    questions = [json.loads(line) for line in (folder / "questions.jsonl").read_text("utf-8").splitlines()]
    paraphrases = {q["question"] for q in questions if q["kind"] == "paraphrase"}
    assert paraphrases and not paraphrases & generated
    seen = {q["question"] for q in questions if q["kind"] == "seen"}
    assert not paraphrases & seen
