"""``POST /v1/responses`` — OpenAI's Responses API for text (``service.responses``), plain and streamed,
answered by the same pipeline, parameter rules and completion pieces as chat."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from service.answering import answer_stream
from service.completion import answer_message, refuses
from service.deps import MetricsDep, PipelineDep, SettingsDep
from service.engines.base import StreamDelta
from service.metrics import Metrics
from service.params import OutputSpec, check_request
from service.pipeline import Pipeline, Plan
from service.responses import ResponseBuilder, ResponsesRequest, to_chat
from service.routes.chat import generate, plan_request
from service.schema import ChatCompletionRequest
from service.sse import with_deadline
from training.errors import ImprintError
from training.generation import GenerationResult

router = APIRouter(tags=["responses"])


async def pieces(
    pipeline: Pipeline,
    plan: Plan,
    req: ChatCompletionRequest,
    spec: OutputSpec,
    metrics: Metrics,
    timeout_s: float,
    t0: float,
) -> AsyncIterator[tuple[str, Any]]:
    """("text", StreamDelta) / ("refusal", str) pieces, then ("done", ...) or ("error", message)."""
    result: GenerationResult | None = None
    metrics.queue.inc()
    try:
        gen = answer_stream(pipeline, plan, req, spec.json_schema)
        async for item in with_deadline(gen, timeout_s):
            if not isinstance(item, StreamDelta):
                result = item
            elif plan.abstains and refuses(spec, plan):
                yield "refusal", item.text
            else:
                yield "text", item
    except ImprintError as exc:
        metrics.count_error(plan.route, exc)
        yield "error", f"generation failed: {exc.message}"
        return
    finally:
        metrics.queue.dec()
    assert result is not None
    metrics.account(
        plan.route, result.prompt_tokens, result.completion_tokens, plan.retrieved_prompt_tokens, t0
    )
    message, finish = answer_message(spec, plan, result)
    yield "done", (message, finish, result, plan.info(result.text))


@router.post("/v1/responses", response_model=None)
async def create_response(
    body: ResponsesRequest, pipeline: PipelineDep, settings: SettingsDep, metrics: MetricsDep
) -> JSONResponse | StreamingResponse:
    t0 = time.perf_counter()
    route = "unrouted"
    builder = ResponseBuilder(body, pipeline.tokenizer)
    try:
        req = to_chat(body)
        spec = check_request(req, vocab_size=len(pipeline.tokenizer))
        plan = await plan_request(pipeline, req, settings.request_timeout_s)
        route = plan.route
        metrics.observe_plan(plan.decision, plan.retrieval_ms)
        if body.stream:
            stream = pieces(pipeline, plan, req, spec, metrics, settings.request_timeout_s, t0)
            return StreamingResponse(
                builder.events(stream),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        result = await generate(pipeline, plan, req, spec, metrics, settings.request_timeout_s)
    except ImprintError as exc:
        metrics.count_error(route, exc)
        raise
    metrics.account(
        plan.route, result.prompt_tokens, result.completion_tokens, plan.retrieved_prompt_tokens, t0
    )
    message, finish = answer_message(spec, plan, result)
    return JSONResponse(builder.final(message, finish, result, plan.info(result.text)))
