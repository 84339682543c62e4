"""``POST /v1/chat/completions`` — plain and streamed (SSE), every model name (``service.pipeline``).

Every parameter is first judged by ``service.params`` (honoured, or a 400 naming it); ``response_format`` and
forced tool calls become a JSON Schema the engine decodes under; the answer's pieces (refusal for an
abstention under a structured output, tool calls, logprobs, fingerprint) come from ``service.completion``.
Each response carries the extra ``imprint`` object (route, reason, citations; streamed once, in the chunk
with ``finish_reason``). Retrieval + planning and generation each get ``request_timeout_s`` (504 past it). A
client that disconnects stops its generation (``service.cancel``; streams: Starlette cancels them), and so
do the timeout and shutdown. A key may use the models that retrieve (``imprint``, ``imprint-rag``) only if
it may read the served knowledge base.
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from service.answering import answer
from service.cancel import CLIENT_CLOSED, ClientGone, until_disconnected
from service.completion import answer_message, fingerprint, openai_logprobs
from service.deps import MetricsDep, PipelineDep, PrincipalDep, SettingsDep
from service.metrics import Metrics
from service.params import OutputSpec, check_request
from service.pipeline import Pipeline, Plan
from service.schema import ChatCompletion, ChatCompletionRequest, Choice, Usage
from service.sse import stream_completion
from training.errors import ImprintError, TimedOut, Unavailable
from training.generation import GenerationResult

router = APIRouter(tags=["chat"])
log = logging.getLogger("imprint.service")


async def plan_request(pipeline: Pipeline, req: ChatCompletionRequest, timeout_s: float) -> Plan:
    try:
        return await asyncio.wait_for(pipeline.plan(req), timeout_s)
    except TimeoutError as exc:
        raise TimedOut(f"retrieval took longer than {timeout_s:.0f} s") from exc


async def generate(
    pipeline: Pipeline,
    plan: Plan,
    req: ChatCompletionRequest,
    spec: OutputSpec,
    metrics: Metrics,
    timeout_s: float,
) -> GenerationResult:
    metrics.queue.inc()
    try:
        result = await asyncio.wait_for(answer(pipeline, plan, req, spec.json_schema), timeout_s)
    except TimeoutError as exc:
        raise TimedOut(f"generation took longer than {timeout_s:.0f} s") from exc
    finally:
        metrics.queue.dec()
    if result.finish_reason == "cancelled":  # only the engine closing cancels a request someone awaits
        raise Unavailable("the server is shutting down; retry the request", code="shutting_down")
    return result


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    req: ChatCompletionRequest,
    request: Request,
    pipeline: PipelineDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    principal: PrincipalDep,
) -> Response:
    t0 = time.perf_counter()
    route = "unrouted"
    try:
        spec = check_request(req, vocab_size=len(pipeline.tokenizer))
        if kb := pipeline.retrieval_kb(req.model):
            principal.require_read(kb, param="model")
        plan = await plan_request(pipeline, req, settings.request_timeout_s)
        route = plan.route
        metrics.observe_plan(plan.decision, plan.retrieval_ms)
        if req.stream:
            return StreamingResponse(
                stream_completion(pipeline, plan, req, spec, metrics, settings.request_timeout_s, t0),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        result = await until_disconnected(
            request, generate(pipeline, plan, req, spec, metrics, settings.request_timeout_s)
        )
    except ImprintError as exc:
        metrics.count_error(route, exc)
        raise
    except ClientGone:
        metrics.requests.labels(route=route, status=str(CLIENT_CLOSED)).inc()
        return Response(status_code=CLIENT_CLOSED)
    metrics.account(
        plan.route, result.prompt_tokens, result.completion_tokens, plan.retrieved_prompt_tokens, t0
    )
    message, finish = answer_message(spec, plan, result)
    body = ChatCompletion(
        model=req.model,
        choices=[
            Choice(
                message=message,
                finish_reason=finish,  # type: ignore[arg-type]
                logprobs=openai_logprobs(pipeline.tokenizer, result.logprobs),
            )
        ],
        usage=Usage.of(result.prompt_tokens, result.completion_tokens),
        system_fingerprint=fingerprint(plan),
        imprint=plan.info(result.text),
    )
    return JSONResponse(body.model_dump(mode="json"))
