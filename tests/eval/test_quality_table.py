"""The quality benchmark's report (eval/bench/quality.py): a wrong answer the router sent is told apart from
a miss that said "I don't know", and the table says how many there were."""

from __future__ import annotations

from eval.bench import quality
from eval.report import Result, summarize


def _payload() -> dict:
    v1 = [
        Result("seen-1", "seen", "hybrid", "老大是谁?", "老大是哥哥JIM。", True, 10, 5, "adapter"),
        Result("para-1", "paraphrase", "hybrid", "家里老大叫什么?", "不知道。", False, 10, 3, "abstain"),
        Result("unknown-1", "unknown", "hybrid", "老三是谁?", "老三是弟弟TOM。", False, 10, 5, "adapter"),
        Result("unknown-1", "unknown", "ft", "老三是谁?", "老三是弟弟TOM。", False, 10, 5, "adapter"),
    ]
    v2 = [Result("table-1", "table", "hybrid", "台灯多少钱?", "199元。[1]", False, 50, 4, "adapter+context")]
    return {
        "example": "family",
        "base_model": "tiny-phi3",
        "v1": {"summary": summarize(v1), "results": [r.__dict__ for r in v1]},
        "v2": {"summary": summarize(v2), "results": [r.__dict__ for r in v2], "stale": {"hybrid": 1}},
        "timings_s": {},
    }


def test_wrong_answers_sent_are_the_misses_that_do_not_abstain() -> None:
    payload = _payload()
    assert quality.wrong_sent(payload, "v1") == [("unknown-1", "老三是弟弟TOM。")]
    assert quality.wrong_sent(payload, "v1", mode="ft") == [("unknown-1", "老三是弟弟TOM。")]
    assert quality.wrong_sent(payload, "v2") == [("table-1", "199元。[1]")]
    report = quality.table(payload)
    assert (
        'Wrong answers sent (hybrid; a miss that is not "I don\'t know"): 2 of 4 '
        "(unknown-1: 老三是弟弟TOM。; table-1: 199元。[1])"
    ) in report
    assert "| unknown | 0/1 | 0/1 | adapter 1 |" in report


def test_imprint_eval_counts_and_shows_the_wrong_answers_sent(capsys) -> None:
    from eval.report import print_tables

    asked = [("seen-1", "seen", "老大是谁?"), ("unknown-1", "unknown", "老三是谁?")]
    answers = {  # (mode, id) → (answer, correct)
        ("ft", "seen-1"): ("老大是哥哥JIM。", True),
        ("ft", "unknown-1"): ("老三是弟弟TOM。", False),
        ("hybrid", "seen-1"): ("不知道。", False),
        ("hybrid", "unknown-1"): ("不知道。", True),
    }
    results = [
        Result(qid, kind, mode, q, answers[mode, qid][0], answers[mode, qid][1], 10, 5, mode)
        for mode in ("ft", "hybrid")
        for qid, kind, q in asked
    ]
    summary = summarize(results)
    # an abstention is no wrong answer
    assert [summary[m]["all"]["wrong_sent"] for m in ("ft", "hybrid")] == [1, 0]
    assert summary["ft"]["unknown"]["wrong_sent"] == 1 and summary["ft"]["seen"]["wrong_sent"] == 0
    print_tables(results, summary)
    [row] = [line for line in capsys.readouterr().out.splitlines() if "wrong answers sent" in line]
    assert [c.strip() for c in row.split("│")[1:-1]] == ["wrong answers sent", "1", "0"]
