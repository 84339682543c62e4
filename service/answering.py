"""Answer a planned request — and, for the routed ``imprint`` model, check the answer before anyone sees it.

Forced models (``imprint-base``, ``imprint-adapter[:NAME]``, ``imprint-rag``) and structured outputs are
generated as asked. A routed answer is generated with its token logprobs and judged (``service.checks``):

- a question only close to a training question (a candidate paraphrase, ``service.routing``): the adapter
  is asked it both in the trained wording and as the user asked it; the answers must agree, or the second
  says nothing (repeats the question) and a document about the question states the first (``confirmed``);
  when they do not, the retrieved documents are read instead (as for an adapter answer not trusted) — and
  when the trained answer was about another thing than the question asks (``things.asks_other``), a
  documents answer restating that fact is not sent either;
- from the adapter alone: trusted when the adapter did not fail this question in its memorisation check
  (``imprint.json`` → ``memorization.missed``) and it was sure (geometric-mean token probability ≥ the
  adapter's calibrated ``confidence`` threshold) and the question does not name a code, place or period its
  training question did not ("在北京", ``training.text.beyond``), or when a retrieved document states the
  same thing.
  Otherwise the documents are tried: the same adapter answers again with the retrieved sources;
- from documents (adapter+context, context): sent only when one source sentence about the question states
  what the answer adds (no value copied from another row, no invented number). Otherwise: "I don't know" —
  unless the question names exactly what to read: when an answer fails its check or says it does not know,
  the one table cell the question names (its row, and its column by header or by the unit it counts in),
  or the one source line holding the address or number it asks for (and naming whose) — or the time of day,
  amount, discount, number of hours, length of time, count or name it asks for (and its most specific word;
  when no longer word of it is in the sources, one of its characters in a line also closest by meaning) —
  answers, cited (route ``extract``);
- a question the router matched to a training question the adapter failed in its memorisation check, when
  neither a documents answer nor a named cell or line may be sent: the answer it was trained on, from its
  training set (route ``trained``) — what the adapter would say had it learned it, in the user's own words.
  Only for those questions: an adapter unsure of a question it passed is a sign the question is another one.
  A question only close by meaning to one it failed (``missed_question``: it cannot confirm it) gets that
  answer when a source sentence about the question states it, citing it;

On every route, an answer to a question asking for an e-mail address, a web address, a phone number, a time
of day, an amount of money, a discount, a number of hours, a length of time or a code must hold one, and
one asking which things must name them, not give a number (``has_form``). Every check lands in
``imprint.decision.checks``, so a client (and ``imprint eval``) sees why. Usage counts every generation the
answer took. Streaming a checked answer sends it once it passed (one delta).

    result = await answer(pipeline, plan, request, json_schema=None)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from service.checks import (
    agree,
    confidence,
    confirmed,
    form_line,
    has_form,
    sentences,
    subject_words,
    support,
    unnamed_owner,
)
from service.engines.base import StreamDelta
from service.routing import named_cell
from service.things import asks_other, names_more, restates
from training.errors import InvalidInput
from training.generation import GenerationRequest, GenerationResult
from training.prompting import cell_sentence, quoted_line, strip_markers
from training.text import abstain_text, beyond, detect_language, is_abstention

# Default geometric-mean token probability under which an adapter-alone answer is not trusted (the adapter's
# own calibration, written by its memorisation check, wins).
DEFAULT_ADAPTER_CONFIDENCE = 0.9


def checks_apply(pipeline: Any, plan: Any, json_schema: str | None) -> bool:
    return pipeline.router.check_answers and not plan.forced and not plan.abstains and json_schema is None


async def answer(pipeline: Any, plan: Any, req: Any, json_schema: str | None = None) -> GenerationResult:
    """The final answer to ``plan`` (which a failed check may re-route to documents or to an abstention)."""
    if plan.abstains:
        return GenerationResult(abstain_text(plan.question), 0, 0, "stop")
    gen_req = pipeline.generation_request(plan, req, json_schema)
    if not checks_apply(pipeline, plan, json_schema):
        return await pipeline.engine.generate(gen_req)
    spent = [0, 0]
    failed = _failed_question(plan)
    result = await _generate_checked(pipeline, gen_req, spent)
    ok, why = True, ""
    if plan.route == "adapter" and plan.decision.get("confirm"):
        ok, why = await _confirm(pipeline, plan, req, json_schema, result, spent)
    if ok:
        ok, why = await asyncio.to_thread(judge, pipeline, plan, result)
    _record(plan, plan.route, ok, why)
    if not ok and plan.route == "adapter" and plan.retrieved:
        try:
            pipeline.use_context(plan, plan.retrieved, f"the adapter's answer was not trusted ({why})")
        except InvalidInput as exc:  # not even one document fits the model's context: nothing to read
            ok, why = False, f"{why}; no document fits the context ({exc.message})"
        else:
            gen = pipeline.generation_request(plan, req, json_schema)
            result = await _generate_checked(pipeline, gen, spent)
            ok, why = await asyncio.to_thread(judge, pipeline, plan, result)
            _record(plan, plan.route, ok, why)
    if not ok or is_abstention(result.text):
        why = why if not ok else "it said it does not know"
        extracted = _extract(pipeline, plan, why, spent) or _trained(pipeline, plan, failed, why, spent)
        if extracted is not None:
            return extracted
    if not ok:
        plan.route, plan.reason, plan.hits = "abstain", f"answer not sent: {why}", []
        return GenerationResult(abstain_text(plan.question), spent[0], spent[1], "stop")
    wanted = gen_req.logprobs
    return replace(
        result,
        prompt_tokens=spent[0],
        completion_tokens=spent[1],
        logprobs=result.logprobs if wanted is not None else None,
    )


async def answer_stream(
    pipeline: Any, plan: Any, req: Any, json_schema: str | None = None
) -> AsyncIterator[StreamDelta | GenerationResult]:
    """Stream the answer: token by token when it is not checked, else in one piece once it passed."""
    if not plan.abstains and not checks_apply(pipeline, plan, json_schema):
        async for item in pipeline.engine.stream(pipeline.generation_request(plan, req, json_schema)):
            yield item
        return
    result = await answer(pipeline, plan, req, json_schema)
    if result.text:
        yield StreamDelta(result.text, logprobs=result.logprobs)
    yield result


async def _confirm(
    pipeline: Any, plan: Any, req: Any, json_schema: str | None, trained: GenerationResult, spent: list[int]
) -> tuple[bool, str]:
    """A candidate paraphrase: ask the adapter the question as the user asked it too; answers must agree."""
    training_question = plan.asked_as
    pipeline.ask_as(plan, None)
    try:
        asked = await _generate_checked(pipeline, pipeline.generation_request(plan, req, json_schema), spent)
    finally:
        pipeline.ask_as(plan, training_question)
    sources = [h.text for h in plan.retrieved]
    ok, why = await asyncio.to_thread(
        confirmed, plan.question, trained.text, asked.text, sources, pipeline.related, _subject(plan)
    )
    if not ok and asks_other(plan.question, trained.text):
        # That fact is about another thing: the documents' answer may not restate it (judge).
        plan.decision["about_other"] = strip_markers(trained.text)
    return ok, why


def _extract(pipeline: Any, plan: Any, why: str, spent: list[int]) -> GenerationResult | None:
    """The model's answer was not sent (or said it does not know): a value the question names exactly is read
    from the documents instead, cited (route ``extract``) — the one table cell it names, or the one line
    holding the form of value it asks for (``checks.form_line``). What a small model memorised can outvote
    the row in front of it ("折叠车按天租的会员价" → the monthly pass's 59元 it trained on); a cell cannot
    be misread."""
    hits = plan.hits or plan.retrieved
    lang = detect_language(plan.question)
    cell = named_cell(plan.question, hits)
    if cell is not None:
        i, (key, column, value) = cell
        hit, what, text = hits[i], f"the cell {key} / {column}", cell_sentence(key, column, value, 1, lang)
    else:
        sources = [h.text for h in plan.retrieved]
        line = form_line(plan.question, sources, _subject(plan), pipeline.related)
        if line is None:
            return None
        hit, what, text = plan.retrieved[line[0]], f"the line {line[1]!r}", quoted_line(line[1], 1, lang)
    plan.route, plan.adapter, plan.hits = "extract", None, [hit]
    plan.reason = f"{what} answers it (the model's answer was not sent: {why})"
    _record(plan, "extract", True, what)
    return GenerationResult(text, spent[0], spent[1], "stop")


def _failed_question(plan: Any) -> str | None:
    """The training question an adapter-routed ``plan`` was matched to, when the adapter failed it in its
    memorisation check and the question asks about nothing that training question does not."""
    adapter = plan.adapter
    if plan.route != "adapter" or adapter is None:
        return None
    trained = plan.decision.get("knowledge_question") or plan.asked_as or plan.question
    return trained if trained in adapter.missed and not beyond(plan.question, trained) else None


def _trained(
    pipeline: Any, plan: Any, failed: str | None, why: str, spent: list[int]
) -> GenerationResult | None:
    """The answer the adapter was trained to give the failed training question the router matched
    (``failed``), or the one it was only close to by meaning (``missed_question``) when a source sentence
    about the question states that answer (route ``trained``)."""
    if failed:
        return _recorded(plan, failed, why, spent)
    missed, adapter = plan.decision.get("missed_question"), plan.adapter
    text = adapter.trained_answer(missed) if adapter is not None and missed else None
    if text is None or not plan.retrieved:
        return None
    sources = [h.text for h in plan.retrieved]
    s = support(plan.question, text, sources, pipeline.related, _subject(plan), strict=True)
    if not s.ok or s.sentence is None:
        return None
    result = _recorded(plan, missed, f"{why}; a document states its answer ({s.reason})", spent)
    if result is None:
        return None
    # Cited: the document that states it (sentences are compared lower-cased, as support found them).
    i = next((i for i, t in enumerate(sources) if any(s.sentence == x.lower() for x in sentences(t))), None)
    if i is None:
        return result
    plan.hits = [plan.retrieved[i]]
    return replace(result, text=quoted_line(strip_markers(result.text), 1, detect_language(plan.question)))


def _recorded(plan: Any, trained: str, why: str, spent: list[int]) -> GenerationResult | None:
    """The answer the adapter was trained to give ``trained`` (route ``trained``), when it holds the form the
    question asks for."""
    adapter = plan.adapter
    text = adapter.trained_answer(trained) if adapter is not None else None
    if text is None or not has_form(plan.question, text)[0]:
        return None
    what = f"the training answer to {trained!r}"
    plan.route, plan.hits = "trained", []
    plan.reason = f"{what}: the adapter failed it in its memorisation check"
    if "memorisation check" not in why:
        plan.reason += f"; the documents' answer: {why}"
    _record(plan, "trained", True, what)
    return GenerationResult(text, spent[0], spent[1], "stop")


async def _generate_checked(pipeline: Any, gen_req: GenerationRequest, spent: list[int]) -> GenerationResult:
    """Generate with (at least) the chosen tokens' logprobs, which the confidence check reads."""
    result = await pipeline.engine.generate(replace(gen_req, logprobs=gen_req.logprobs or 0))
    spent[0] += result.prompt_tokens
    spent[1] += result.completion_tokens
    return result


def judge(pipeline: Any, plan: Any, result: GenerationResult) -> tuple[bool, str]:
    """Whether ``result`` may be sent for ``plan``'s route, and why (see the module docstring). Blocking (it
    may embed a sentence): call it in a thread."""
    if result.finish_reason == "cancelled":
        return True, "cancelled"  # nobody waits for it; the route reports the shutdown
    shaped, why = has_form(plan.question, result.text)
    if not shaped:
        return False, why
    adapter = plan.adapter
    subject = _subject(plan)
    sources = [h.text for h in plan.hits] or [h.text for h in plan.retrieved]
    if plan.route != "adapter":
        other = plan.decision.get("about_other")
        text = result.text
        same = bool(other) and (agree(plan.question, other, text)[0] or restates(other, text))
        same = same and not names_more(plan.question, other, text)
        if same and not is_abstention(text):
            # "微信小程序叫什么名字?": the adapter's "公益项目叫绿轮计划" was refused as another thing's
            # name; reading the handbook it said "微信小程序叫绿轮计划" — the same fact, relabelled.
            return False, f"it states what the adapter said of another thing ({other[:40]!r})"
        owner = unnamed_owner(plan.question, text, [h.text for h in plan.hits], subject)
        if owner:
            return False, owner
        s = support(plan.question, result.text, [h.text for h in plan.hits], pipeline.related, subject)
        return s.ok, ("sources state it: " if s.ok else "") + s.reason
    asked = plan.asked_as or plan.question
    if adapter is not None and asked in adapter.missed:
        return False, "the adapter failed this question in its memorisation check"
    c = confidence(result.logprobs)
    threshold = next(
        t
        for t in (pipeline.router.adapter_confidence, _calibrated(adapter), DEFAULT_ADAPTER_CONFIDENCE)
        if t is not None
    )
    trained = plan.decision.get("knowledge_question") or asked
    # "云雀咖啡在北京有几家门店?" is not "云雀咖啡有多少家门店?": the adapter's sure answer is the company's.
    extra = beyond(plan.question, trained)
    if c is not None and c.mean_prob >= threshold and not extra:
        return True, f"confident (p={c.mean_prob:.2f} ≥ {threshold:.2f})"
    s = support(plan.question, result.text, sources, pipeline.related, subject) if sources else None
    if s is not None and s.ok and s.sentence is not None:
        return True, f"documents state it: {s.reason}"
    if extra:
        return False, f"asks about {extra}, which its training question did not; no document states it"
    shown = f"p={c.mean_prob:.2f} < {threshold:.2f}" if c is not None else "no token probabilities"
    return False, f"unsure ({shown}) and no document states it"


def _subject(plan: Any) -> frozenset[str]:
    """Words in most of the adapter's training questions (``checks.subject_words``): no question's topic."""
    return subject_words(tuple(plan.adapter.knowledge)) if plan.adapter else frozenset()


def _calibrated(adapter: Any) -> float | None:
    value = ((adapter.memorization or {}).get("calibration") or {}).get("confidence") if adapter else None
    return float(value) if isinstance(value, int | float) else None


def _record(plan: Any, route: str, ok: bool, why: str) -> None:
    plan.decision.setdefault("checks", []).append({"route": route, "passed": ok, "why": why})
