"""OpenAI's Responses API over the chat pipeline, for text in and text out — what vLLM's ``/v1/responses``
serves: ``input`` as a string or a list of messages (``input_text``/``output_text`` parts), ``instructions``
(a system message), ``max_output_tokens``, ``temperature``/``top_p``, ``text.format`` (``text``,
``json_object``, ``json_schema`` — the same constrained decoding as chat), ``stream`` with the ``response.*``
events the openai SDK parses. A request becomes a ``ChatCompletionRequest``, so every chat rule applies
(routing, citations in ``imprint``, refusal for an abstention under a structured format);
``previous_response_id`` and stored responses, tools, reasoning and non-text input are refused with a 400
naming the field.

    client.responses.create(model="imprint", input="老大是谁?").output_text
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from service.completion import openai_logprobs
from service.schema import ChatCompletionRequest, ChoiceMessage
from training.errors import InvalidInput
from training.generation import GenerationResult

ACCEPTED = frozenset(
    {"metadata", "user", "safety_identifier", "prompt_cache_key", "service_tier", "parallel_tool_calls"}
)
REFUSED = {
    "previous_response_id": "Imprint stores no responses: send the whole conversation as 'input'",
    "conversation": "Imprint stores no conversations: send the whole conversation as 'input'",
    "reasoning": "Imprint's models do not reason in hidden steps: remove 'reasoning'",
    "background": "responses run in the foreground only: remove 'background'",
    "prompt": "stored prompts do not exist here: send 'instructions' and 'input'",
    "include": "no extra output items exist here: remove 'include'",
}


class ResponsesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str = "imprint"
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    stream: bool | None = False
    text: dict[str, Any] | None = None
    store: bool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    truncation: str | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)


def _refuse(param: str, message: str) -> InvalidInput:
    return InvalidInput(f"{param}: {message}", param=param, code="unsupported_parameter")


def _check_fields(req: ResponsesRequest) -> None:
    for name, value in (req.model_extra or {}).items():
        if value is None or name in ACCEPTED:
            continue
        if name in REFUSED:
            raise _refuse(name, REFUSED[name])
        raise InvalidInput(f"Unrecognized request argument supplied: {name}", param=name)
    if req.store:
        raise _refuse("store", "Imprint stores no responses: send store=false")
    if req.tools:
        raise _refuse("tools", "tools are served on /v1/chat/completions (forced calls): remove 'tools'")
    if req.truncation not in (None, "disabled"):
        raise _refuse("truncation", "prompts are never truncated: send 'disabled' or leave it out")


def _part_text(part: Any, where: str) -> str:
    if isinstance(part, dict) and part.get("type") in ("input_text", "output_text", "text"):
        return str(part.get("text", ""))
    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
    raise _refuse(where, f"input part {kind!r} is not supported: Imprint's models read text only")


def _messages(req: ResponsesRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if req.instructions:
        out.append({"role": "system", "content": req.instructions})
    if isinstance(req.input, str):
        return [*out, {"role": "user", "content": req.input}]
    for i, item in enumerate(req.input):
        if item.get("type", "message") != "message" or "role" not in item:
            raise _refuse(f"input[{i}]", f"item type {item.get('type')!r} is not supported: send messages")
        content = item.get("content", "")
        if isinstance(content, list):
            content = "".join(_part_text(p, f"input[{i}].content[{j}]") for j, p in enumerate(content))
        out.append({"role": item["role"], "content": content})
    return out


def _response_format(req: ResponsesRequest) -> dict[str, Any] | None:
    fmt = (req.text or {}).get("format")
    if not fmt or fmt.get("type") != "json_schema":
        return fmt
    # Responses puts name/schema/strict next to "type"; chat nests them under "json_schema".
    return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}


def to_chat(req: ResponsesRequest) -> ChatCompletionRequest:
    _check_fields(req)
    body: dict[str, Any] = {
        "model": req.model,
        "messages": _messages(req),
        "max_completion_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "response_format": _response_format(req),
    }
    if req.top_logprobs is not None:
        body.update(logprobs=True, top_logprobs=req.top_logprobs)
    return ChatCompletionRequest.model_validate(body)


class ResponseBuilder:
    """The ``response`` object and its stream events for one request (ids fixed once)."""

    def __init__(self, req: ResponsesRequest, tokenizer: Any) -> None:
        self.req, self.tokenizer = req, tokenizer
        self.id, self.msg_id = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.seq = 0

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: GenerationResult | None = None,
        imprint: Any = None,
    ) -> dict[str, Any]:
        fmt = (self.req.text or {}).get("format") or {"type": "text"}
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.req.model,
            "output": output,
            "instructions": self.req.instructions,
            "max_output_tokens": self.req.max_output_tokens,
            "temperature": self.req.temperature,
            "top_p": self.req.top_p,
            "text": {"format": fmt},
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "usage": None,
        }
        if usage is not None:
            body["usage"] = {
                "input_tokens": usage.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": usage.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            }
        if imprint is not None:
            body["imprint"] = imprint.model_dump(mode="json")
        return body

    def _logprobs(self, result: Any) -> list[dict[str, Any]]:
        lps = openai_logprobs(self.tokenizer, getattr(result, "logprobs", None))
        return [c.model_dump() for c in lps.content or []] if lps else []

    def part(self, message: ChoiceMessage | None, result: Any = None) -> dict[str, Any]:
        if message is not None and message.refusal is not None:
            return {"type": "refusal", "refusal": message.refusal}
        text = message.content if message is not None else ""
        return {
            "type": "output_text",
            "text": text or "",
            "annotations": [],
            "logprobs": self._logprobs(result),
        }

    def item(self, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"type": "message", "id": self.msg_id, "status": status, "role": "assistant", "content": parts}

    def final(self, message: ChoiceMessage, finish: str, result: GenerationResult, imprint: Any) -> dict:
        status = "incomplete" if finish == "length" else "completed"
        return self.response(status, [self.item(status, [self.part(message, result)])], result, imprint)

    def event(self, kind: str, **fields: Any) -> str:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def events(self, chunks: AsyncIterator[tuple[str, Any]]) -> AsyncIterator[str]:
        """SSE events from ``(kind, value)`` pieces: ("text", StreamDelta), ("refusal", str), then
        ("done", (message, finish, result, imprint)) or ("error", message)."""
        yield self.event("response.created", response=self.response("in_progress", []))
        yield self.event("response.in_progress", response=self.response("in_progress", []))
        yield self.event("response.output_item.added", output_index=0, item=self.item("in_progress", []))
        where = {"item_id": self.msg_id, "output_index": 0, "content_index": 0}
        started = False
        async for kind, value in chunks:
            if kind == "error":
                yield self.event("error", message=value, code=None, param=None)
                return
            if kind == "done":
                message, finish, result, imprint = value
                part = self.part(message, result)
                if not started:
                    yield self.event("response.content_part.added", **where, part=self.part(None))
                if part["type"] == "output_text":
                    yield self.event("response.output_text.done", **where, text=part["text"], logprobs=[])
                else:
                    yield self.event("response.refusal.done", **where, refusal=part["refusal"])
                yield self.event("response.content_part.done", **where, part=part)
                final = self.final(message, finish, result, imprint)
                yield self.event("response.output_item.done", output_index=0, item=final["output"][0])
                done = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
                yield self.event(done, response=final)
                return
            if not started:
                started = True
                first = {"type": "refusal", "refusal": ""} if kind == "refusal" else self.part(None)
                yield self.event("response.content_part.added", **where, part=first)
            if kind == "refusal":
                yield self.event("response.refusal.delta", **where, delta=value)
            else:
                logprobs = self._logprobs(value)
                yield self.event("response.output_text.delta", **where, delta=value.text, logprobs=logprobs)
