"""The memorisation check: what counts as answered, calibration, and that it asks exactly what the service
would (the same prompt and generation code: a served adapter answers its training questions identically)."""

from __future__ import annotations

import json
from pathlib import Path

from training.memorize import calibrate, memorized, qa_pairs


def test_an_answer_is_memorised_when_its_values_and_most_words_are_there() -> None:
    assert memorized("流明的客服电话是400-826-5188。", "流明的客服电话是400-826-5188。")
    assert memorized("流明客服电话：400-826-5188", "流明的客服电话是400-826-5188。")
    assert not memorized("流明的客服电话是400-82888888。", "流明的客服电话是400-826-5188。")  # wrong digits
    assert memorized("老大是哥哥JIM", "老大是哥哥JIM。")
    assert not memorized("流明科技成立于2011年。", "流明科技由周明远和林若溪共同创立。")


def test_qa_pairs_take_the_last_turn_once_and_skip_untrained_answers() -> None:
    qa = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]
    muted = [{"role": "user", "content": "M"}, {"role": "assistant", "content": "x", "weight": 0}]
    pairs = qa_pairs([qa, qa, muted, [{"role": "user", "content": "only"}]])
    assert pairs == [([{"role": "user", "content": "Q"}], "A")]


def test_calibration_separates_known_from_made_up_answers() -> None:
    assert calibrate([0.99, 0.98, 0.97], [0.7, 0.8, 0.9]) == 0.935  # halfway between 0.9 and 0.97
    # overlap: the threshold that gets the most of both right (0.95), halfway down to the negative below
    assert calibrate([0.99, 0.95, 0.85], [0.9, 0.7]) == 0.925
    assert calibrate([], [0.5]) is None and calibrate([0.9], []) is None
    assert calibrate([0.3], [0.1]) == 0.5  # never below 0.5


def test_the_check_asks_what_the_served_adapter_answers(tiny_phi3_adapter: Path, tiny_phi3_base) -> None:
    """The adapter's imprint.json records every training question with the answer the check saw; the
    embedded serving engine, forced to the same adapter, gives exactly those answers."""
    from eval.modes import EvalSession

    memo = json.loads((tiny_phi3_adapter / "imprint.json").read_text(encoding="utf-8"))["memorization"]
    assert memo["checked"] == 9 and len(memo["outcomes"]) == 9
    assert memo["passed"] + len(memo["missed"]) == memo["checked"]
    assert memo["calibration"]["made_up"]["n"] == 12
    session = EvalSession(adapter=tiny_phi3_adapter, max_new_tokens=64)
    served = session.answer("ft", [o["question"] for o in memo["outcomes"]])
    for o, a in zip(memo["outcomes"], served, strict=True):
        assert a.answer.startswith(o["answer"]) or o["answer"].startswith(a.answer), (o, a.answer)


def test_a_round_that_answers_no_more_is_undone_and_one_that_costs_validation_stops(monkeypatch) -> None:
    """The control flow of ``run`` with scripted answers: round 1 answers more (kept), round 2 answers no
    more (undone); a refresh that undid itself (it cost validation accuracy) ends the rounds at once."""
    from training import memorize

    pairs = [
        [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}] for i in range(3)
    ]
    script = iter([[1, 0, 0], [1, 1, 0], [1, 1, 0], [0] * 12])

    def fake_check(model, tokenizer, template, asked, max_tokens):
        return [
            memorize.Outcome(c[-1]["content"], e, "", bool(ok), 0.9 if ok else 0.4)
            for (c, e), ok in zip(asked, next(script), strict=True)
        ]

    events: list[str] = []

    def refresh(examples):
        events.append(f"train {len(examples)}")
        return lambda: events.append("undo")

    monkeypatch.setattr(memorize, "check", fake_check)
    result = memorize.run(None, None, "", pairs, refresh=refresh, limit=10, rounds=5)
    assert events == ["train 3", "train 2", "undo"]  # 2 missed + 1 known, then 1 missed + 1 known
    assert result["passed_by_round"] == [1, 2] and result["missed"] == ["q2"]

    script = iter([[1, 0, 0], [0] * 12])
    result = memorize.run(None, None, "", pairs, refresh=lambda examples: None, limit=10, rounds=5)
    assert result["passed_by_round"] == [1] and result["passed"] == 1


def test_the_known_answers_a_wrong_answer_borrowed_from_are_replayed_next_to_it() -> None:
    """The wrong "老二是哥哥Mike。" (trained: 弟弟Mike) took 哥哥 from 老大's and 哥哥's answers: those two
    are replayed with the miss, the rest of the known pairs only to make up the count."""
    from training.memorize import Outcome, confused_with, replay

    trained = {
        "你家有几个人?": "我家有4个人,还有一只猫kitty。",
        "老大是谁?": "老大是哥哥JIM。",
        "老二是谁?": "老二是弟弟Mike。",
        "哥哥几岁?": "哥哥JIM今年10岁。",
        "老二喜欢吃什么?": "老二喜欢吃苹果。",
    }
    said = {"老二是谁?": "老二是哥哥Mike。"}
    pairs = [([{"role": "user", "content": q}], a) for q, a in trained.items()]
    outcomes = [Outcome(q, a, said.get(q, a), q not in said, 0.9) for q, a in trained.items()]
    assert confused_with("老二是哥哥Mike。", "老二是弟弟Mike。", "老大是哥哥JIM。") == 1
    assert confused_with("老二是哥哥Mike。", "老二是弟弟Mike。", "老二喜欢吃苹果。") == 0  # 老二 is right
    assert [c[-1]["content"] for c, _ in replay(pairs, outcomes)] == ["老大是谁?", "哥哥几岁?"]

    # Nothing borrowed (an empty answer): the first known pairs, as many as there are misses.
    said = {"老二是谁?": "", "哥哥几岁?": ""}
    outcomes = [Outcome(q, a, said.get(q, a), q not in said, 0.9) for q, a in trained.items()]
    assert [c[-1]["content"] for c, _ in replay(pairs, outcomes)] == ["你家有几个人?", "老大是谁?"]
