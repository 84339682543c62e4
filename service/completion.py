"""From a plan and a generation result to OpenAI's response pieces — shared by the plain and the streamed chat
path so both say the same thing:

- the answer's shape (``service.params.OutputSpec``): text content, JSON content (``response_format``), or a
  forced tool call (``tool_calls``, ``finish_reason: "tool_calls"``);
- an ABSTENTION under ``response_format``/forced tools becomes OpenAI's ``refusal`` field (content null),
  the way OpenAI reports a structured answer it will not give: the SDK's ``parse()`` returns
  ``parsed=None, refusal="I don't know."`` instead of failing on text that is not JSON. Plain-text requests
  keep the abstention as content, as before;
- ``logprobs`` in OpenAI's ``choices[].logprobs.content[]`` shape (token, logprob, bytes, top_logprobs), the
  token text and bytes taken from the tokenizer's byte vocabulary (xgrammar's ``decoded_vocab``);
- ``system_fingerprint``: Imprint's version + a hash of the adapter that answered (``base`` without one).

    message, finish = answer_message(spec, plan, result)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from service.params import OutputSpec
from service.schema import (
    ChoiceLogprobs,
    ChoiceMessage,
    FunctionCall,
    TokenLogprobOut,
    ToolCall,
    TopLogprob,
)
from training.generation import GenerationResult, TokenLogprob
from training.paths import imprint_version
from training.text import abstain_text


def fingerprint(plan: Any) -> str:
    """``fp_<version>_<8 hex>``: changes when Imprint or the answering adapter's weights/data change."""
    adapter = plan.adapter
    key = f"{adapter.name}/{adapter.created_at}/{adapter.data_sha256}" if adapter else "base"
    return f"fp_{imprint_version()}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"


def refuses(spec: OutputSpec, plan: Any) -> bool:
    """An abstention under a structured output is reported as a refusal (see the module doc)."""
    return plan.abstains and spec.kind != "text"


def tool_call(spec: OutputSpec, text: str) -> ToolCall:
    """The forced call from the constrained output: the arguments ARE the output for a named function; for
    ``tool_choice: "required"`` the output is ``{"name": ..., "arguments": {...}}``."""
    if spec.tool is not None:
        return ToolCall(function=FunctionCall(name=spec.tool, arguments=text))
    try:
        call = json.loads(text)
        name, arguments = call["name"], json.dumps(call["arguments"], ensure_ascii=False)
    except (ValueError, KeyError, TypeError):  # cut off by max_tokens: the client sees finish "length"
        name, arguments = "", text
    return ToolCall(function=FunctionCall(name=name, arguments=arguments))


def answer_message(spec: OutputSpec, plan: Any, result: GenerationResult) -> tuple[ChoiceMessage, str]:
    """(the assistant message, finish_reason) for a non-streamed answer."""
    if refuses(spec, plan):
        return ChoiceMessage(content=None, refusal=abstain_text(plan.question)), "stop"
    if spec.kind == "tool":
        finish = "tool_calls" if result.finish_reason == "stop" else result.finish_reason
        return ChoiceMessage(content=None, tool_calls=[tool_call(spec, result.text)]), finish
    return ChoiceMessage(content=result.text), result.finish_reason


@lru_cache(maxsize=4)
def _token_bytes(tokenizer: Any) -> list[bytes]:
    import xgrammar as xgr

    return list(xgr.TokenizerInfo.from_huggingface(tokenizer).decoded_vocab)


def _entry(vocab: list[bytes], token_id: int, logprob: float) -> dict[str, Any]:
    raw = vocab[token_id] if token_id < len(vocab) else b""
    return {"token": raw.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(raw)}


def openai_logprobs(tokenizer: Any, lps: Sequence[TokenLogprob] | None) -> ChoiceLogprobs | None:
    if lps is None:
        return None
    vocab = _token_bytes(tokenizer)
    return ChoiceLogprobs(
        content=[
            TokenLogprobOut(
                **_entry(vocab, lp.token_id, lp.logprob),
                top_logprobs=[TopLogprob(**_entry(vocab, t, v)) for t, v in lp.top],
            )
            for lp in lps
        ]
    )
