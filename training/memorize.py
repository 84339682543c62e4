"""The memorisation check at the end of training: does the adapter answer its own training questions, asked
as the service asks them (the adapter's chat template, greedy, ``training.generation`` — the code the serving
engine runs, here with the questions in one padded batch: same answers, one decode pass)?

- Misses get a few more optimizer steps on themselves (with as many known examples replayed, so nothing else
  is forgotten), then everything is asked again — at most ``rounds`` times. The known examples replayed
  first are those the wrong answer borrowed from (``confused_with``): "老二是谁?" answered "老二是哥哥Mike。"
  (trained: 弟弟Mike) took 哥哥 from "老大是哥哥JIM。", so both are trained side by side: the contrast
  between the two is what was not learned. A round is undone when it costs
  validation accuracy or answers no more questions than before: the check never leaves the adapter worse.
- What still misses is listed in ``imprint.json`` → ``memorization.missed``: the router never trusts the
  adapter alone on those questions (service/answering.py); it answers them from documents, else with the
  answer recorded here (``outcomes`` → ``expected``, route ``trained``), else abstains.
- The same pass measures how sure the adapter is — the geometric mean of its answer tokens' probabilities —
  on what it knows and on made-up questions in the same language (``training.raft.made_up_questions``), and
  calibrates the router's adapter-confidence threshold on the two: ``memorization.calibration.confidence``.

    imprint train ... --memorization-check 200     # default: up to 200 training questions; 0 turns it off
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from training.calibration import separating_threshold
from training.chat import render_chat
from training.generation import generate_greedy_batch, mean_probability
from training.text import detect_language, normalize, values, words

# What "answers it" means: the trained answer's numbers/codes all there, and most of its words.
WORD_SHARE = 0.75
DISTRACTORS = 12  # made-up questions the confidence threshold is calibrated against
DISTRACTOR_TOKENS = 24  # enough of an invented answer to see how sure the model is of it
SLACK_TOKENS = 8  # a training question's answer may run this much past the trained answer's length
BATCH = 16  # questions per padded decode batch
PARTNERS = 2  # known answers a miss's wrong answer borrowed from, replayed next to it


@dataclass(frozen=True)
class Outcome:
    question: str
    expected: str
    answer: str
    correct: bool
    confidence: float  # geometric-mean token probability of the answer


def memorized(answer: str, expected: str) -> bool:
    """Whether ``answer`` says what the trained ``expected`` answer says (see WORD_SHARE)."""
    if normalize(answer).rstrip("。.!！") == normalize(expected).rstrip("。.!！"):
        return True
    low = answer.lower()
    if not all(v in low for v in values(expected)):
        return False
    wanted = [w for w in dict.fromkeys(words(expected)) if w not in values(expected)]
    return not wanted or sum(1 for w in wanted if w in low) / len(wanted) >= WORD_SHARE


def qa_pairs(examples: Sequence[Sequence[dict[str, Any]]]) -> list[tuple[list[dict[str, Any]], str]]:
    """(the conversation up to the last user turn, the trained answer) of each example, duplicates once."""
    out: dict[str, tuple[list[dict[str, Any]], str]] = {}
    for messages in examples:
        if len(messages) < 2 or messages[-1]["role"] != "assistant" or messages[-2]["role"] != "user":
            continue
        if messages[-1].get("weight", 1) == 0:
            continue
        prompt = [dict(m) for m in messages[:-1]]
        out.setdefault(prompt[-1]["content"], (prompt, str(messages[-1]["content"])))
    return list(out.values())


def _prompt_ids(tokenizer: Any, template: str, chat: list[dict[str, Any]]) -> list[int]:
    prompt = render_chat(chat, template, add_generation_prompt=True, bos_token=tokenizer.bos_token or "")
    return list(tokenizer(prompt, add_special_tokens=False)["input_ids"])


def check(
    model: Any, tokenizer: Any, template: str, pairs: list[tuple[list[dict[str, Any]], str]], max_tokens: int
) -> list[Outcome]:
    """Every question asked greedily, ``BATCH`` at a time in one padded batch (a decode step costs about
    the same for one question as for sixteen on a CPU: it is reading the weights)."""
    was_training = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(pairs), BATCH):
            part = pairs[start : start + BATCH]
            prompts = [_prompt_ids(tokenizer, template, chat) for chat, _ in part]
            rooms = [
                min(max_tokens, len(tokenizer(e, add_special_tokens=False)["input_ids"]) + SLACK_TOKENS)
                if e
                else max_tokens
                for _, e in part
            ]
            for (chat, expected), r in zip(
                part, generate_greedy_batch(model, tokenizer, prompts, rooms), strict=True
            ):
                p = mean_probability(r.logprobs) or 0.0
                out.append(Outcome(chat[-1]["content"], expected, r.text, memorized(r.text, expected), p))
        return out
    finally:
        model.train(was_training)


def confused_with(answer: str, expected: str, other: str) -> int:
    """How much of the wrong ``answer`` (to a question trained on ``expected``) comes from the ``other``
    trained answer: the words and values it has that ``expected`` lacks and ``other`` holds."""
    borrowed = {*words(answer), *values(answer)} - {*words(expected), *values(expected)}
    return len(borrowed & {*words(other), *values(other)})


def replay(pairs: Sequence[tuple[Any, str]], outcomes: Sequence[Outcome]) -> list[tuple[Any, str]]:
    """The known pairs trained next to the misses: for each miss the (up to ``PARTNERS``) known answers its
    wrong answer borrowed most from, then other known pairs until there are as many as misses."""
    known = [(p, o) for p, o in zip(pairs, outcomes, strict=True) if o.correct]
    chosen: dict[str, tuple[Any, str]] = {}
    for miss in (o for o in outcomes if not o.correct):
        scores = [confused_with(miss.answer, miss.expected, p[1]) for p, _ in known]
        ranked = sorted((i for i, n in enumerate(scores) if n > 0), key=lambda i: -scores[i])  # stable
        for i in ranked[:PARTNERS]:
            chosen.setdefault(known[i][1].question, known[i][0])
    misses = len(outcomes) - len(known)
    for p, o in known:
        if len(chosen) >= misses:
            break
        chosen.setdefault(o.question, p)
    return list(chosen.values())


def calibrate(known: Sequence[float], unknown: Sequence[float]) -> float | None:
    """The confidence threshold that best separates known answers (should pass) from answers to made-up
    questions (should not), never below 0.5 (``training.calibration.separating_threshold``)."""
    return separating_threshold(known, unknown, lo=0.5, hi=0.99)


def run(
    model: Any,
    tokenizer: Any,
    template: str,
    examples: Sequence[Sequence[dict[str, Any]]],
    *,
    refresh: Callable[[list[Sequence[dict[str, Any]]]], Callable[[], None] | None],
    limit: int,
    rounds: int = 2,
    max_tokens: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Check (up to ``limit`` questions), train the misses ``rounds`` times at most, check again, calibrate.
    ``refresh(examples)`` runs a few optimizer steps on ``examples`` (the training loop's, see train.py) and
    returns how to undo them — or None when it undid them itself (they cost validation accuracy). A round
    that answers no more questions than the one before is undone too: the adapter is never left worse."""
    from training.raft import made_up_questions

    pairs = qa_pairs(examples)[:limit]
    if not pairs:
        return {}
    outcomes = check(model, tokenizer, template, pairs, max_tokens)
    history = [sum(o.correct for o in outcomes)]
    for _ in range(rounds):
        missed = [(c, e) for (c, e), o in zip(pairs, outcomes, strict=True) if not o.correct]
        if not missed:
            break
        known = replay(pairs, outcomes)
        undo = refresh([[*c, {"role": "assistant", "content": e}] for c, e in missed + known])
        if undo is None:
            break
        again = check(model, tokenizer, template, pairs, max_tokens)
        if sum(o.correct for o in again) <= history[-1]:
            undo()
            break
        outcomes = again
        history.append(sum(o.correct for o in outcomes))
    lang = detect_language(" ".join(c[-1]["content"] for c, _ in pairs))
    made_up = [[{"role": "user", "content": q}] for q in made_up_questions(DISTRACTORS, lang=lang, seed=seed)]
    invented = check(model, tokenizer, template, [(c, "") for c in made_up], DISTRACTOR_TOKENS)
    known_p = [o.confidence for o in outcomes if o.correct]
    return {
        "checked": len(pairs),
        "passed": sum(o.correct for o in outcomes),
        "passed_by_round": history,
        "missed": [o.question for o in outcomes if not o.correct],
        "calibration": {
            "confidence": calibrate(known_p, [o.confidence for o in invented]),
            "known": _spread(known_p),
            "made_up": _spread([o.confidence for o in invented]),
        },
        "outcomes": [asdict(o) for o in outcomes],
    }


def _spread(xs: Sequence[float]) -> dict[str, float | int]:
    if not xs:
        return {"n": 0}
    s = sorted(xs)
    return {"n": len(s), "min": round(s[0], 4), "median": round(s[len(s) // 2], 4), "max": round(s[-1], 4)}
