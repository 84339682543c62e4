"""Thresholds calibrated on the user's own data, not constants measured on someone else's.

Two thresholds decide whether the adapter alone answers:

- **confidence** — how sure the adapter is of its answer (geometric-mean token probability). The memorisation
  check (``training.memorize``) measures it on the training questions it answers and on made-up questions,
  and stores the separating threshold in ``imprint.json`` → ``memorization.calibration``.
- **semantic** — how close (embedding cosine) a question must be to a training question for the router to
  treat it as that question asked in other words. The service calibrates it per adapter and knowledge-base
  embedder when it loads them (``service/pipeline.py``), from the sets this module builds:
  positives — rule-based paraphrases of the training questions (``training.augment``) and training questions
  that share an answer; negatives — each training question against the training questions with OTHER answers
  (same domain, different fact: "老三是谁?" is not "老二是谁?"), and made-up questions in the shapes of the
  reading curriculum (``training.raft.made_up_questions``).

Both use ``separating_threshold``: the threshold with the best balanced accuracy between what should pass and
what should not (pure; tested with exact numbers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from training.text import detect_language

PARAPHRASES_PER_QUESTION = 2
MADE_UP = 24


def separating_threshold(
    positives: Sequence[float], negatives: Sequence[float], *, lo: float, hi: float
) -> float | None:
    """The threshold with the best balanced accuracy (share of positives ≥ t + share of negatives < t), placed
    halfway between the lowest positive it lets through and the highest negative below it (the widest
    margin), clamped to [lo, hi]; None when either side is empty."""
    if not positives or not negatives:
        return None
    best: tuple[float, float] | None = None
    for t in sorted({*positives, *negatives}):
        score = sum(p >= t for p in positives) / len(positives) + sum(n < t for n in negatives) / len(
            negatives
        )
        if best is None or score > best[0] + 1e-12:
            best = (score, t)
    assert best is not None
    below = [n for n in negatives if n < best[1]]
    t = (best[1] + max(below)) / 2 if below else best[1]
    return round(min(hi, max(lo, t)), 4)


@dataclass(frozen=True)
class SemanticSets:
    """Question pairs whose similarity should pass (positives) or not (negatives): (question, the training
    question indexes it is compared with)."""

    positives: list[tuple[str, list[int]]]
    negatives: list[tuple[str, list[int]]]  # other facts of the same training set, then the made-up ones
    made_up: int = 0  # how many of the negatives (the last ones) are made-up questions


def semantic_sets(
    questions: Sequence[str], answers: Sequence[str] | None = None, *, seed: int = 0
) -> SemanticSets:
    """The calibration sets of a training set (``answers`` parallel to ``questions`` when known; without them
    every other question counts as another fact)."""
    from training.augment import paraphrase
    from training.raft import made_up_questions

    everyone = list(range(len(questions)))
    answer_of = list(answers) if answers is not None else [str(i) for i in everyone]
    positives: list[tuple[str, list[int]]] = []
    negatives: list[tuple[str, list[int]]] = []
    for i, q in enumerate(questions):
        for p in paraphrase(q, PARAPHRASES_PER_QUESTION, seed=seed):
            positives.append((p, [i]))
        same = [j for j in everyone if j != i and answer_of[j] == answer_of[i]]
        other = [j for j in everyone if answer_of[j] != answer_of[i]]
        if same:
            positives.append((q, same))
        if other:
            negatives.append((q, other))
    lang = detect_language(" ".join(questions))
    negatives += [(q, everyone) for q in made_up_questions(MADE_UP, lang=lang, seed=seed)]
    return SemanticSets(positives, negatives, MADE_UP)
