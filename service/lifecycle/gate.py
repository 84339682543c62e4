"""The eval gate: a fine-tuning job that names a registry adapter is judged before it serves.

A job's ``imprint`` object: ``{"adapter": NAME, "eval_file": FILE_ID, "promote": "if_better"|"always"|
"never"}``. After training, the candidate and the promoted version answer the same questions through the
serving pipeline (each forced by its model id, no retrieval): the ``eval_file`` (``imprint eval``'s
questions JSONL, uploaded with purpose ``user_data``), else the job's own training and validation
questions (scored as the memorisation check scores them). ``if_better`` promotes when the candidate is not
worse on any kind (``gate_tolerance``); the first version of a name when it scores at least
``gate_pass_score`` on every kind.

    check_options(store, {"adapter": "family", "eval_file": "file-…"})   # InvalidInput naming the field
    scores = await score(pipeline, "ft:tiny-phi3:imprint::abc", questions, max_tokens=48)
    promote, reason = verdict("if_better", candidate, serving, tolerance=0.0, pass_score=0.8)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.adapter import NAME_RE
from training.config import ConfigError
from training.errors import InvalidInput

POLICIES = ("if_better", "always", "never")
LIFECYCLE_KEYS = ("adapter", "eval_file", "promote")  # job options the gate reads; training never sees them
EVAL_PURPOSE = "user_data"


@dataclass(frozen=True)
class GateQuestion:
    kind: str
    question: str
    expected: Any  # list of strings, or an object (a JSON answer), as in imprint eval
    forbidden: tuple[str, ...] = ()
    trained: bool = False  # a training pair: scored like the memorisation check, against its trained answer


def check_options(store: Any, options: dict[str, Any]) -> None:
    """Refuse lifecycle options that could not be judged, before the job exists."""
    name = options.get("adapter")
    if name is not None and not NAME_RE.match(name):
        raise InvalidInput(
            f"imprint.adapter: {name!r} is not an adapter name: 1–64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            param="imprint.adapter",
            code="invalid_adapter_name",
        )
    if name is None and (options.get("eval_file") or options.get("promote")):
        raise InvalidInput(
            "imprint.adapter: eval_file and promote judge a version of a named adapter; add "
            '"adapter": NAME (the registry name this job would update)',
            param="imprint.adapter",
        )
    if options.get("eval_file"):
        eval_questions(store, options["eval_file"])


def eval_questions(store: Any, file_id: str) -> list[GateQuestion]:
    from training.questions import load_questions

    param = "imprint.eval_file"
    rec = store.get_file(file_id, param=param)
    if rec.purpose != EVAL_PURPOSE:
        raise InvalidInput(
            f"{param}: file {file_id} has purpose {rec.purpose!r}; upload the questions JSONL with purpose "
            f"{EVAL_PURPOSE!r}",
            param=param,
            code="invalid_file_purpose",
        )
    try:
        questions = load_questions(rec.path)
    except ConfigError as exc:
        # The message names the server's file path; the client knows it by id and filename.
        detail = exc.message.replace(str(rec.path), f"{file_id} ({rec.filename})")
        raise InvalidInput(f"{param}: {detail}", param=param, code="invalid_eval_file") from None
    return [GateQuestion(q.kind, q.question, q.expected, tuple(q.forbidden)) for q in questions]


def job_questions(store: Any, job: Any) -> list[GateQuestion]:
    """The eval file's questions, else the job's training (and held-out validation) questions."""
    if job.imprint.get("eval_file"):
        return eval_questions(store, job.imprint["eval_file"])
    from training.data import validate_file
    from training.memorize import qa_pairs

    out = []
    for kind, file_id in (("training", job.training_file), ("validation", job.validation_file)):
        if file_id:
            report = validate_file(Path(store.get_file(file_id).path))
            pairs = qa_pairs([e.messages for e in report.examples])
            out += [GateQuestion(kind, chat[-1]["content"], [answer], (), True) for chat, answer in pairs]
    return out


def correct(q: GateQuestion, answer: str) -> bool:
    from training.memorize import memorized
    from training.scoring import is_correct

    if q.trained:
        return memorized(answer, q.expected[0])
    return is_correct(answer, q.expected, forbidden=q.forbidden)


async def score(
    pipeline: Any, model: str, questions: list[GateQuestion], *, max_tokens: int
) -> dict[str, float]:
    """{kind: share of right answers} of ``model`` (forced, greedy) through the serving pipeline."""
    from service.schema import ChatCompletionRequest

    right: dict[str, int] = defaultdict(int)
    total: dict[str, int] = defaultdict(int)
    for q in questions:
        req = ChatCompletionRequest(
            model=model,
            messages=[{"role": "user", "content": q.question}],
            max_tokens=max_tokens,
            temperature=0,
        )
        _, result = await pipeline.complete(req)
        total[q.kind] += 1
        right[q.kind] += correct(q, result.text)
    return {k: round(right[k] / total[k], 4) for k in total}


def verdict(
    policy: str,
    candidate: dict[str, float],
    serving: dict[str, float] | None,
    *,
    tolerance: float,
    pass_score: float,
) -> tuple[bool, str]:
    if policy == "never":
        return False, 'promote: "never" (kept as a version; promote it by number)'
    if policy == "always":
        return True, 'promote: "always"'
    if serving is None:
        low = {k: v for k, v in candidate.items() if v < pass_score}
        if low:
            return False, f"first version scores below gate_pass_score {pass_score} on {_kinds(low)}"
        return True, f"first version passes its questions (every kind ≥ {pass_score})"
    worse = {
        k: f"{candidate.get(k, 0.0)} < {serving[k]}"
        for k in serving
        if candidate.get(k, 0.0) < serving[k] - tolerance
    }
    if worse:
        return False, f"worse than the promoted version on {_kinds(worse)}"
    return True, f"not worse than the promoted version on any kind (tolerance {tolerance})"


def _kinds(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} ({v})" for k, v in sorted(values.items()))
