"""Server-sent events for streamed chat completions, shaped exactly like OpenAI's.

The first chunk carries ``role``, then content deltas (with their tokens' ``logprobs`` when asked), then ONE
chunk with ``finish_reason`` and the Imprint ``imprint`` object, then (if ``stream_options.include_usage``) a
usage chunk with empty ``choices``, then ``data: [DONE]``. A forced tool call arrives as one ``tool_calls``
delta once its arguments are complete; an abstention under a structured output as a ``refusal`` delta
(``service.completion``). Errors after the headers went out are reported in-band, as OpenAI does. When the
client leaves, Starlette cancels this generator; closing the engine's stream then stops the generation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from service.answering import answer_stream
from service.completion import fingerprint, openai_logprobs, refuses, tool_call
from service.engines.base import StreamDelta
from service.errors import domain_error_body
from service.metrics import Metrics
from service.params import OutputSpec
from service.pipeline import Pipeline, Plan
from service.schema import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChoiceLogprobs,
    ChunkChoice,
    ChunkDelta,
    ChunkToolCall,
    Usage,
    new_completion_id,
)
from training.errors import ImprintError, TimedOut, Unavailable
from training.generation import GenerationResult


def event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def with_deadline(gen: AsyncIterator[Any], timeout_s: float) -> AsyncIterator[Any]:
    """Re-yield ``gen``, but raise TimedOut when the whole stream takes longer than ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    it = gen.__aiter__()
    while True:
        try:
            item = await asyncio.wait_for(it.__anext__(), max(deadline - loop.time(), 0.001))
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            raise TimedOut(f"generation took longer than {timeout_s:.0f} s") from exc
        yield item


async def stream_completion(
    pipeline: Pipeline,
    plan: Plan,
    req: ChatCompletionRequest,
    spec: OutputSpec,
    metrics: Metrics,
    timeout_s: float,
    t0: float,
) -> AsyncIterator[str]:
    cid, created, fp = new_completion_id(), int(time.time()), fingerprint(plan)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)

    def chunk(
        delta: ChunkDelta, finish: str | None = None, logprobs: ChoiceLogprobs | None = None, **extra: Any
    ) -> str:
        c = ChatCompletionChunk(
            id=cid,
            created=created,
            model=req.model,
            choices=[ChunkChoice(delta=delta, finish_reason=finish, logprobs=logprobs)],
            system_fingerprint=fp,
            **extra,
        )  # type: ignore[arg-type]
        data = c.model_dump(mode="json", exclude_none=True)
        data["choices"][0]["finish_reason"] = finish
        if include_usage:
            data["usage"] = None
        return event(data)

    yield chunk(ChunkDelta(role="assistant", content=""))
    result: GenerationResult | None = None
    gen: AsyncIterator[Any] | None = None
    metrics.queue.inc()
    try:
        gen = answer_stream(pipeline, plan, req, spec.json_schema)
        async for item in with_deadline(gen, timeout_s):
            if not isinstance(item, StreamDelta):
                result = item
            elif plan.abstains:  # decided by the router, or by a failed check of a routed answer
                refusal = refuses(spec, plan)
                yield chunk(ChunkDelta(refusal=item.text) if refusal else ChunkDelta(content=item.text))
            elif spec.kind != "tool":  # a tool call is sent whole, once its arguments are complete
                logprobs = openai_logprobs(pipeline.tokenizer, item.logprobs)
                yield chunk(ChunkDelta(content=item.text), logprobs=logprobs)
        if result is not None and result.finish_reason == "cancelled":
            raise Unavailable("the server is shutting down; retry the request", code="shutting_down")
    except ImprintError as exc:
        # Headers are sent already: report in-band the way OpenAI does, then end the stream.
        metrics.count_error(plan.route, exc)
        _, body = domain_error_body(exc)
        body["error"]["message"] = f"generation failed: {exc.message}"
        yield event(body)
        yield "data: [DONE]\n\n"
        return
    finally:
        metrics.queue.dec()
        if gen is not None:  # the client left or the deadline passed: stop the engine's generation now
            with contextlib.suppress(RuntimeError):  # already closed by the cancellation itself
                await gen.aclose()  # type: ignore[attr-defined]
    assert result is not None
    metrics.account(
        plan.route, result.prompt_tokens, result.completion_tokens, plan.retrieved_prompt_tokens, t0
    )
    finish: str = result.finish_reason
    if spec.kind == "tool" and not plan.abstains:
        call = tool_call(spec, result.text)
        yield chunk(ChunkDelta(tool_calls=[ChunkToolCall(id=call.id, function=call.function)]))
        finish = "tool_calls" if finish == "stop" else finish
    yield chunk(ChunkDelta(), finish, imprint=plan.info(result.text))
    if include_usage:
        yield event(
            ChatCompletionChunk(
                id=cid,
                created=created,
                model=req.model,
                choices=[],
                usage=Usage.of(result.prompt_tokens, result.completion_tokens),
                system_fingerprint=fp,
            ).model_dump(mode="json", exclude_none=True)
        )
    yield "data: [DONE]\n\n"
