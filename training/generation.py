"""Generation — the ONE contract and the ONE in-process implementation, used by the serving engine
(``service/engines/embedded.py`` runs it on its worker thread), by ``imprint eval`` (through that engine) and
by training's memorisation check. Prompts arrive as token ids rendered with the adapter's chat template.

    from training.generation import GenerationRequest, generate
    result = generate(model, tokenizer, GenerationRequest(prompt_ids=ids, max_tokens=32))

Greedy when ``temperature == 0``. Generation ends at EOS or any end-of-turn token (``training.chat``), at a
stop string (OpenAI never returns the stop text), at ``max_tokens``, or when ``should_stop()`` turns true
(checked once per token: client gone, timeout, shutdown).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from training.chat import stop_token_ids

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class GenerationRequest:
    prompt_ids: list[int]
    adapter: str | None = None  # None → base model (adapters disabled)
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    seed: int | None = None


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason = "stop"


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


def generate(
    model: Any,
    tokenizer: Any,
    req: GenerationRequest,
    *,
    streamer: Any = None,
    should_stop: Callable[[], bool] | None = None,
) -> GenerationResult:
    """Complete one prompt with ``model`` as it is (the caller selects the adapter); see the module doc."""
    import torch
    from transformers import StoppingCriteriaList

    eos = stop_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    ids = torch.tensor([req.prompt_ids], dtype=torch.long, device=model.device)
    kwargs: dict[str, Any] = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "max_new_tokens": req.max_tokens,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "streamer": streamer,
    }
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
    text, stopped = trim_at_stop(tokenizer.decode(new, skip_special_tokens=True), req.stop)
    finish: FinishReason = "stop"
    if cancel is not None and cancel.fired:
        finish = "cancelled"
    elif len(new) >= req.max_tokens and not ended and not stopped:
        finish = "length"
    return GenerationResult(text, len(req.prompt_ids), len(new), finish)


def adapter_context(model: Any, adapter: str | None) -> Any:
    """Select ``adapter`` on a peft model (None: the base weights, adapters disabled for the block)."""
    if not hasattr(model, "peft_config"):
        return contextlib.nullcontext()
    if adapter is None:
        return model.disable_adapter()
    model.set_adapter(adapter)
    return contextlib.nullcontext()
