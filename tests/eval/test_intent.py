"""The measured intent set (eval/examples/intent): the "needs a fact?" rule never lets an unknown fact
question through (it would be answered instead of abstained), and finds nearly every instruction."""

from __future__ import annotations

from eval.intent import measure, table
from tests.conftest import REPO


def test_measured_intent_set_never_answers_an_unknown_fact():
    counts, _ = measure(REPO / "eval" / "examples" / "intent" / "requests.jsonl")
    facts_as_instructions = sum(
        n for (_, label, pred), n in counts.items() if (label, pred) == ("fact", "instruction")
    )
    instructions = sum(n for (_, label, _), n in counts.items() if label == "instruction")
    found = sum(
        n for (_, label, pred), n in counts.items() if (label, pred) == ("instruction", "instruction")
    )
    assert facts_as_instructions == 0 and instructions >= 20 and found / instructions >= 0.9
    assert "| all | fact | 0 |" in table(counts)
