"""Calibration sets and the separating threshold (training/calibration.py): pure, exact."""

from __future__ import annotations

from training.augment import paraphrase
from training.calibration import MADE_UP, PARAPHRASES_PER_QUESTION, semantic_sets, separating_threshold


def test_the_threshold_with_the_best_balanced_accuracy_halfway_in_the_gap() -> None:
    assert separating_threshold([0.9, 0.8, 0.7], [0.5, 0.6], lo=0.0, hi=1.0) == 0.65
    # 0.8 loses a positive but stops both negatives: 2/3 + 1 beats 1 + 1/2 at 0.65; then halfway to 0.7
    assert separating_threshold([0.9, 0.8, 0.65], [0.5, 0.7], lo=0.0, hi=1.0) == 0.75
    assert separating_threshold([0.9], [0.1], lo=0.6, hi=1.0) == 0.6  # clamped
    assert separating_threshold([0.99], [0.98], lo=0.0, hi=0.95) == 0.95
    assert (
        separating_threshold([], [0.1], lo=0, hi=1) is None
        and separating_threshold([1], [], lo=0, hi=1) is None
    )


def test_semantic_sets_pair_paraphrases_and_shared_answers_and_oppose_other_facts() -> None:
    questions = ["老大是谁?", "家里老大叫什么?", "老二是谁?"]
    answers = ["老大是JIM。", "老大是JIM。", "老二是TOM。"]
    sets = semantic_sets(questions, answers, seed=0)
    paraphrases = [(p, [i]) for i, q in enumerate(questions) for p in paraphrase(q, PARAPHRASES_PER_QUESTION)]
    assert ("老大是谁?", [1]) in sets.positives and ("家里老大叫什么?", [0]) in sets.positives
    assert ("老二是谁?", [0, 1]) in sets.negatives and ("老大是谁?", [2]) in sets.negatives
    assert all(p in sets.positives for p in paraphrases)
    made_up = sets.negatives[3:]
    assert len(made_up) == MADE_UP and all(idx == [0, 1, 2] for _, idx in made_up)
    # without answers every other question is another fact
    assert ("老大是谁?", [1, 2]) in semantic_sets(questions, seed=0).negatives
