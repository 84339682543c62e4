"""Generation — the ONE contract and the ONE in-process implementation, used by the serving engine
(``service/engines/embedded.py`` runs it on its worker thread), by ``imprint eval`` (through that engine) and
by training's memorisation check. Prompts arrive as token ids rendered with the adapter's chat template.

    from training.generation import GenerationRequest, generate
    result = generate(model, tokenizer, GenerationRequest(prompt_ids=ids, max_tokens=32))

Greedy when ``temperature == 0``. Generation ends at EOS or any end-of-turn token (``training.chat``), at a
stop string (OpenAI never returns the stop text), at ``max_tokens``, or when ``should_stop()`` turns true
(checked once per token: client gone, timeout, shutdown).

The OpenAI sampling parameters are part of the contract, and both engines honour them the same way
(``training.logits`` holds the in-process processors): ``json_schema`` constrains the output to a JSON Schema
(xgrammar, the backend vLLM uses), ``frequency_penalty``/``presence_penalty``/``logit_bias`` as OpenAI defines
them, and ``logprobs=k`` returns each generated token's raw log-probability with its ``k`` most likely
alternatives (``GenerationResult.logprobs``; the router may use them as a confidence signal).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from training.chat import stop_token_ids

FinishReason = Literal["stop", "length", "cancelled"]
JSON_OBJECT_SCHEMA = '{"type": "object"}'  # what OpenAI's json_object mode (and vLLM's) constrains to


@dataclass(frozen=True)
class GenerationRequest:
    prompt_ids: list[int]
    adapter: str | None = None  # None → base model (adapters disabled)
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    seed: int | None = None
    json_schema: str | None = None  # JSON Schema text the output must satisfy (JSON_OBJECT_SCHEMA: any)
    logprobs: int | None = None  # None: no logprobs; k ≥ 0: each token's logprob and its k likeliest rivals
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: Mapping[int, float] | None = None  # token id → added to its logit (-100 bans, 100 forces)


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token's log-probability under the model's distribution before penalties, bias and
    temperature (vLLM's default ``raw_logprobs``; under a JSON grammar, over the tokens the grammar allows),
    and the ``top`` k likeliest tokens at that step. Impossible tokens get -9999.0, as OpenAI and vLLM."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()  # (token id, logprob), likeliest first


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason = "stop"
    logprobs: list[TokenLogprob] | None = None  # one per token of ``text`` when the request asked for them


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop sequence; True when one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def safe_prefix_len(text: str, stops: Sequence[str]) -> int:
    """How much of a growing ``text`` can be streamed without maybe emitting the start of a stop sequence."""
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold


class _Cancel:
    """A transformers StoppingCriteria that ends generation when ``should_stop()`` says so."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.fired = False

    def __call__(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        self.fired = self.fired or bool(self.should_stop())
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


OnToken = Callable[[int, "TokenLogprob | None"], None]


def _tap(recorder: Any, on_token: OnToken | None, streamer: Any) -> Any:
    """A transformers streamer that sees each token as it is chosen (its first ``put`` is the prompt):
    turns the recorder's step into a ``TokenLogprob``, tells ``on_token``, forwards to ``streamer``."""
    from transformers.generation.streamers import BaseStreamer

    class Tap(BaseStreamer):
        def __init__(self) -> None:
            self.prompt_seen = False
            self.logprobs: list[TokenLogprob] = []

        def put(self, value: Any) -> None:
            if streamer is not None:
                streamer.put(value)
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            for token_id in value.reshape(-1).tolist():
                lp = TokenLogprob(token_id, *recorder.take(token_id)) if recorder is not None else None
                if lp is not None:
                    self.logprobs.append(lp)
                if on_token is not None:
                    on_token(token_id, lp)

        def end(self) -> None:
            if streamer is not None:
                streamer.end()

    return Tap()


def _processors(model: Any, tokenizer: Any, req: GenerationRequest, eos: list[int]) -> tuple[list[Any], Any]:
    """(logits processors in vLLM's order — the grammar mask, then the logprob recorder (vLLM's "raw"
    logprobs are taken after the grammar, before penalties, bias and temperature), penalties, bias; the
    recorder or None)."""
    from training import logits

    out: list[Any] = []
    if req.json_schema is not None:
        vocab = getattr(model.config, "vocab_size", None) or len(tokenizer)
        out.append(logits.json_grammar(tokenizer, vocab, eos, req.json_schema))
    recorder = logits.RawLogprobs(req.logprobs) if req.logprobs is not None else None
    if recorder is not None:
        out.append(recorder)
    if req.frequency_penalty or req.presence_penalty:
        out.append(logits.Penalties(len(req.prompt_ids), req.frequency_penalty, req.presence_penalty))
    if req.logit_bias:
        out.append(logits.logit_bias(req.logit_bias))
    return out, recorder


def _visible(tokenizer: Any, new: list[int], lps: list[TokenLogprob], text: str, eos: list[int]) -> list:
    """The logprobs of the tokens that make up ``text``: no end-of-turn token, nothing past a stop string."""
    kept: list[TokenLogprob] = []
    for i, lp in enumerate(lps):
        if new[i] in eos:
            break
        kept.append(lp)
        if len(tokenizer.decode(new[: i + 1], skip_special_tokens=True)) >= len(text):
            break
    return kept


def generate(
    model: Any,
    tokenizer: Any,
    req: GenerationRequest,
    *,
    streamer: Any = None,
    should_stop: Callable[[], bool] | None = None,
    on_token: OnToken | None = None,
) -> GenerationResult:
    """Complete one prompt with ``model`` as it is (the caller selects the adapter); see the module doc.
    ``on_token(token_id, logprob_or_None)`` is called from the generating thread for each new token."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    eos, pad = _stop_and_pad(tokenizer)
    ids = torch.tensor([req.prompt_ids], dtype=torch.long, device=model.device)
    processors, recorder = _processors(model, tokenizer, req, eos)
    tap = _tap(recorder, on_token, streamer) if recorder is not None or on_token is not None else None
    kwargs: dict[str, Any] = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "max_new_tokens": req.max_tokens,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "streamer": tap if tap is not None else streamer,
    }
    if processors:
        kwargs["logits_processor"] = LogitsProcessorList(processors)
    if req.temperature > 0:
        kwargs.update(do_sample=True, temperature=req.temperature, top_p=req.top_p, top_k=0)
        if req.seed is not None:
            torch.manual_seed(req.seed)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if req.stop:
        kwargs.update(stop_strings=list(req.stop), tokenizer=tokenizer)
    cancel = _Cancel(should_stop) if should_stop is not None else None
    if cancel is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([cancel])
    with torch.inference_mode():
        out = model.generate(**kwargs)
    new = out[0, ids.shape[1] :].tolist()
    ended = bool(new) and new[-1] in eos
    raw, stopped = trim_at_stop(tokenizer.decode(new, skip_special_tokens=True), req.stop)
    # Ended (max_tokens, or end of turn) inside a multi-byte character: the text drops the half, as vLLM's
    # detokenizer does and as the streamed answer never shows it; the tokens keep their logprobs.
    text = raw.rstrip("\ufffd")
    finish: FinishReason = "stop"
    if cancel is not None and cancel.fired:
        finish = "cancelled"
    elif len(new) >= req.max_tokens and not ended and not stopped:
        finish = "length"
    logprobs = _visible(tokenizer, new, tap.logprobs, raw, eos) if recorder is not None else None
    return GenerationResult(text, len(req.prompt_ids), len(new), finish, logprobs)


def adapter_context(model: Any, adapter: str | None) -> Any:
    """Select ``adapter`` on a peft model (None: the base weights, adapters disabled for the block)."""
    if not hasattr(model, "peft_config"):
        return contextlib.nullcontext()
    if adapter is None:
        return model.disable_adapter()
    model.set_adapter(adapter)
    return contextlib.nullcontext()


class _GreedyLogprobs:
    """Each row's log-probability of its greedy choice, step by step (with no other processor the choice is
    the arg-max of these very logits)."""

    def __init__(self) -> None:
        self.steps: list[Any] = []

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self.steps.append(torch.log_softmax(scores.float(), dim=-1).max(dim=-1).values)
        return scores


def _stop_and_pad(tokenizer: Any) -> tuple[list[int], int]:
    """The ids that end a turn, and the padding id (the first of them when the tokenizer has none)."""
    eos = stop_token_ids(tokenizer)
    return eos, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]


def mean_probability(logprobs: Sequence[TokenLogprob] | None) -> float | None:
    """How sure the model was of a completion: the geometric mean of its tokens' probabilities (a memorised
    answer is ~1.0). None without tokens. The one formula behind the memorisation check's calibration
    (``training.memorize``) and the router's confidence check (``service.checks.confidence``)."""
    values = [float(t.logprob) for t in logprobs or ()]
    return math.exp(sum(values) / len(values)) if values else None


def generate_greedy_batch(
    model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], max_tokens: Sequence[int]
) -> list[GenerationResult]:
    """Greedy completions of several prompts in ONE left-padded batch, each ended at its own ``max_tokens``
    or end of turn, with each kept token's logprob: what ``generate`` gives each prompt alone, up to float
    rounding. For training-time checks that ask many short questions (``training.memorize``): one decode
    pass for all of them instead of one per question."""
    import torch
    from transformers import LogitsProcessorList

    eos, pad = _stop_and_pad(tokenizer)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(list(p), dtype=torch.long)
        mask[i, width - len(p) :] = 1
    recorder = _GreedyLogprobs()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max(max_tokens),
            eos_token_id=eos,
            pad_token_id=pad,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            logits_processor=LogitsProcessorList([recorder]),
        )
    results = []
    for i, (prompt, limit) in enumerate(zip(prompts, max_tokens, strict=True)):
        new = out[i, width:].tolist()[:limit]
        ended = next((j for j, t in enumerate(new) if t in eos), None)
        kept = new if ended is None else new[:ended]
        text = tokenizer.decode(kept, skip_special_tokens=True).rstrip("\ufffd")
        lps = [TokenLogprob(t, float(recorder.steps[j][i])) for j, t in enumerate(kept)]
        finish: FinishReason = "stop" if ended is not None or len(new) < limit else "length"
        results.append(GenerationResult(text, len(prompt), len(kept) + (ended is not None), finish, lps))
    return results
