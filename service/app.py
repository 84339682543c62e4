"""The OpenAI-compatible HTTP service: ``create_app(settings)`` → FastAPI.

    imprint serve --adapter .imprint/adapters/family --kb shop          # embedded engine on 127.0.0.1:8000
    python -c "import openai; c = openai.OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='x'); \
        print(c.chat.completions.create(model='imprint', messages=[{'role': 'user', 'content':
        '老大是谁?'}]))"

Endpoints: ``POST /v1/chat/completions`` (plain and SSE stream), ``GET /v1/models``, ``/healthz``,
``/readyz``,
``/metrics`` (Prometheus), and the KB router from ``indexing.http`` (``/v1/kb/{name}/reindex``, ``/search``).
Every response carries the extra ``imprint`` object (route, reason, citations; streamed once, in the chunk
with
``finish_reason``). Errors are OpenAI-shaped (``service.errors``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.adapters import ServedAdapter, read_served_adapter
from service.config import ServeConfig
from service.engines.base import Engine, EngineBusy, EngineError, GenerationResult, StreamDelta
from service.errors import APIError, error_body, install_error_handlers
from service.metrics import Metrics
from service.pipeline import Pipeline, Plan
from service.prompting import abstain_text
from service.router import RouterConfig
from service.schema import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChoiceMessage,
    ChunkChoice,
    ChunkDelta,
    ModelList,
    Usage,
    new_completion_id,
)

log = logging.getLogger("imprint.service")
OPEN_PATHS = {"/healthz", "/readyz", "/metrics"}


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, by Content-Length or while streaming in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._reject(send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps(error_body(413, f"request body is larger than {self.limit} bytes")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class LoadAdapterRequest(BaseModel):
    path: str


def build_engine(settings: ServeConfig, adapters: list[ServedAdapter]) -> tuple[Engine, Any]:
    """The engine + the tokenizer used to render and count prompts (both engines get identical token ids)."""
    from transformers import AutoTokenizer

    from training.models import DEFAULT_BASE_MODEL, load_base_model, resolve_base_model

    bases = {a.base_model for a in adapters}
    if len(bases) > 1:
        raise ValueError(f"all served adapters must share one base model; got {sorted(bases)}")
    base_name = settings.base_model or (bases.pop() if bases else DEFAULT_BASE_MODEL)
    paths = {a.name: a.path for a in adapters}
    if settings.engine == "embedded":
        from service.engines.embedded import EmbeddedEngine

        model, tokenizer = load_base_model(resolve_base_model(base_name))
        return EmbeddedEngine(
            model,
            tokenizer,
            adapters=paths,
            max_queue=settings.max_queue,
            timeout_s=settings.request_timeout_s,
        ), tokenizer
    from service.engines.embedded import end_of_turn_ids
    from service.engines.vllm import VLLMEngine

    tok_dir = str(adapters[0].path) if adapters else resolve_base_model(base_name).path
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    assert settings.vllm_url, "ServeConfig guarantees a vLLM URL for the vllm engine"
    return VLLMEngine(
        settings.vllm_url,
        adapters=paths,
        api_key=settings.vllm_api_key,
        timeout_s=settings.request_timeout_s,
        stop_token_ids=end_of_turn_ids(tokenizer),
    ), tokenizer


def router_config(settings: ServeConfig, kb: Any) -> RouterConfig:
    """RouterConfig from the settings; per-embedder thresholds where the settings leave them open."""
    from service.router import SEMANTIC_THRESHOLDS

    semantic = settings.semantic_threshold
    if semantic is None:
        semantic = SEMANTIC_THRESHOLDS.get(_embedder_name(kb)) if kb is not None else None
    return RouterConfig(
        dense_threshold=dense_threshold_for(settings, kb),
        lexical_threshold=settings.lexical_threshold,
        knowledge_threshold=settings.knowledge_threshold,
        max_context_hits=settings.max_context_hits,
        semantic_threshold=semantic if semantic is not None and semantic <= 1 else None,
    )


def _embedder_name(kb: Any) -> str:
    from indexing.embeddings import canonical_name

    return canonical_name(str(getattr(kb, "manifest", {}).get("embedder", "")))


def dense_threshold_for(settings: ServeConfig, kb: Any) -> float:
    """The configured threshold, else the one measured for the KB's embedder (cosine scales differ)."""
    if settings.dense_threshold is not None:
        return settings.dense_threshold
    from indexing.embeddings import RELEVANCE_THRESHOLDS

    return RELEVANCE_THRESHOLDS.get(_embedder_name(kb), RouterConfig.dense_threshold)


def open_kb(settings: ServeConfig) -> Any:
    # The process-wide instance: the mounted /v1/kb/{name}/reindex updates this same object, so the next
    # question sees the new facts without a restart.
    from indexing.kb import get_kb

    assert settings.kb is not None
    return get_kb(settings.kb, home=settings.home, chroma_url=settings.chroma_url)


def create_app(
    settings: ServeConfig, *, engine: Engine | None = None, tokenizer: Any = None, kb: Any = None
) -> FastAPI:
    """Build the app. ``engine``/``tokenizer``/``kb`` may be injected (tests, benchmarks); otherwise they
    are built
    from ``settings`` when the app starts."""
    adapters = [read_served_adapter(p) for p in settings.adapters]
    metrics = Metrics()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        eng, tok = (
            (engine, tokenizer)
            if engine is not None
            else await asyncio.to_thread(build_engine, settings, adapters)
        )
        the_kb = (
            kb if kb is not None else (await asyncio.to_thread(open_kb, settings) if settings.kb else None)
        )
        if the_kb is not None:
            log.info("knowledge base %s: %d chunks ready", the_kb.name, await asyncio.to_thread(the_kb.warm))
        await eng.start()
        state["pipeline"] = Pipeline(
            eng,
            tok,
            adapters,
            kb=the_kb,
            retrieval_k=settings.retrieval_k,
            default_max_tokens=settings.default_max_tokens,
            router=router_config(settings, the_kb),
        )
        log.info("serving %s engine, adapters=%s kb=%s", eng.kind, [a.name for a in adapters], settings.kb)
        try:
            yield
        finally:
            await eng.close()

    app = FastAPI(title="Imprint", version="1", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)  # type: ignore[arg-type]
    install_error_handlers(app)
    app.state.metrics = metrics
    app.state.imprint = state

    def pipeline() -> Pipeline:
        if "pipeline" not in state:
            raise APIError(503, "the service is still starting", code="starting")
        return state["pipeline"]

    async def auth(request: Request) -> None:
        if not settings.api_keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not any(
            secrets.compare_digest(token.strip(), k) for k in settings.api_keys
        ):
            raise APIError(
                401,
                "missing or invalid API key: send 'Authorization: Bearer <key>' with a key "
                "from IMPRINT_API_KEYS",
            )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        p = state.get("pipeline")
        ok = p is not None and await p.engine.ready()
        body = {
            "status": "ready" if ok else "not ready",
            "engine": p.engine.kind if p else None,
            "adapters": p.engine.adapters() if p else [],
            "kb": settings.kb,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=[Depends(auth)])
    async def models() -> dict[str, Any]:
        return ModelList(data=pipeline().models()).model_dump()

    @app.post("/v1/adapters", dependencies=[Depends(auth)])
    async def load_adapter(body: LoadAdapterRequest) -> dict[str, Any]:
        """Imprint extra: hot-load a (re)trained adapter folder into the running engine, no restart."""
        p = pipeline()
        try:
            adapter = read_served_adapter(body.path)
        except ValueError as exc:
            raise APIError(400, str(exc), param="path") from exc
        p.check_compatible(adapter)
        try:
            await p.engine.add_adapter(adapter.name, adapter.path)
        except EngineError as exc:
            raise APIError(502, str(exc), param="path") from exc
        except EngineBusy as exc:
            raise APIError(429, f"the engine is busy: {exc}") from exc
        p.add_adapter(adapter)
        log.info("hot-loaded adapter %s from %s", adapter.name, adapter.path)
        return {"id": adapter.model_id, "name": adapter.name, "created_at": adapter.created_at}

    @app.post("/v1/chat/completions", dependencies=[Depends(auth)], response_model=None)
    async def chat(req: ChatCompletionRequest) -> JSONResponse | StreamingResponse:
        if req.unknown_fields:
            log.info("ignoring unknown request fields: %s", sorted(req.unknown_fields))
        p = pipeline()
        t0 = time.perf_counter()
        route = "unrouted"
        try:
            try:
                plan = await asyncio.wait_for(p.plan(req), settings.request_timeout_s)
            except TimeoutError as exc:
                raise APIError(504, f"retrieval took longer than {settings.request_timeout_s:.0f} s") from exc
            route = plan.route
            for why in plan.decision.get("hits", []):
                metrics.retrieval_hits.labels(relevant=str(why["relevant"]).lower()).inc()
            if plan.retrieval_ms:
                metrics.retrieval_seconds.observe(plan.retrieval_ms / 1000)
            if req.stream:
                return StreamingResponse(
                    _stream(p, plan, req, t0),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            result = await _generate(p, plan, req)
        except APIError as exc:
            metrics.requests.labels(route=route, status=str(exc.status)).inc()
            raise
        _account(plan, result, t0, 200)
        body = ChatCompletion(
            model=req.model,
            choices=[Choice(message=ChoiceMessage(content=result.text), finish_reason=result.finish_reason)],
            usage=_usage(result),
            imprint=plan.info(result.text),
        )
        return JSONResponse(body.model_dump(mode="json"))

    async def _generate(p: Pipeline, plan: Plan, req: ChatCompletionRequest) -> GenerationResult:
        if plan.abstains:
            return GenerationResult(abstain_text(plan.question), 0, 0, "stop")
        metrics.queue.inc()
        try:
            return await asyncio.wait_for(
                p.engine.generate(p.generation_request(plan, req)), settings.request_timeout_s
            )
        except EngineBusy as exc:
            raise APIError(429, f"the engine is busy: {exc}; retry shortly") from exc
        except TimeoutError as exc:
            raise APIError(504, f"generation took longer than {settings.request_timeout_s:.0f} s") from exc
        except EngineError as exc:
            raise APIError(502, f"the engine failed: {exc}") from exc
        finally:
            metrics.queue.dec()

    def _account(plan: Plan, result: GenerationResult, t0: float, status: int) -> None:
        metrics.requests.labels(route=plan.route, status=str(status)).inc()
        metrics.latency.labels(route=plan.route).observe(time.perf_counter() - t0)
        metrics.tokens.labels(route=plan.route, kind="prompt").inc(result.prompt_tokens)
        metrics.tokens.labels(route=plan.route, kind="completion").inc(result.completion_tokens)
        metrics.tokens.labels(route=plan.route, kind="retrieved").inc(plan.retrieved_prompt_tokens)

    async def _stream(p: Pipeline, plan: Plan, req: ChatCompletionRequest, t0: float) -> AsyncIterator[str]:
        cid, created = new_completion_id(), int(time.time())
        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(delta: ChunkDelta, finish: str | None = None, **extra: Any) -> str:
            c = ChatCompletionChunk(
                id=cid,
                created=created,
                model=req.model,
                choices=[ChunkChoice(delta=delta, finish_reason=finish)],
                **extra,
            )  # type: ignore[arg-type]
            data = c.model_dump(mode="json", exclude_none=True)
            data["choices"][0]["finish_reason"] = finish
            if include_usage:
                data["usage"] = None
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        yield chunk(ChunkDelta(role="assistant", content=""))
        result: GenerationResult | None = None
        metrics.queue.inc()
        try:
            if plan.abstains:
                result = GenerationResult(abstain_text(plan.question), 0, 0, "stop")
                yield chunk(ChunkDelta(content=result.text))
            else:
                gen = p.engine.stream(p.generation_request(plan, req))
                async for item in _with_timeout(gen, settings.request_timeout_s):
                    if isinstance(item, StreamDelta):
                        yield chunk(ChunkDelta(content=item.text))
                    else:
                        result = item
        except (EngineBusy, EngineError, TimeoutError) as exc:
            # Headers are sent already: report in-band the way OpenAI does, then end the stream.
            status = 429 if isinstance(exc, EngineBusy) else 502
            metrics.requests.labels(route=plan.route, status=str(status)).inc()
            yield f"data: {json.dumps(error_body(status, f'generation failed: {exc}'))}\n\n"
            yield "data: [DONE]\n\n"
            return
        finally:
            metrics.queue.dec()
        assert result is not None
        _account(plan, result, t0, 200)
        yield chunk(ChunkDelta(), result.finish_reason, imprint=plan.info(result.text))
        if include_usage:
            data = ChatCompletionChunk(
                id=cid, created=created, model=req.model, choices=[], usage=_usage(result)
            ).model_dump(mode="json", exclude_none=True)
            yield f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"

    try:
        from indexing.http import router as kb_router

        app.include_router(kb_router, dependencies=[Depends(auth)])
    except ImportError as exc:  # the index package is optional for an adapter-only service
        log.warning("KB endpoints not mounted: %s", exc)
    return app


def _usage(result: GenerationResult) -> Usage:
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


async def _with_timeout(gen: AsyncIterator[Any], timeout_s: float) -> AsyncIterator[Any]:
    """Re-yield ``gen`` but give up (TimeoutError) when the whole stream takes longer than ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    it = gen.__aiter__()
    while True:
        left = deadline - asyncio.get_running_loop().time()
        try:
            item = await asyncio.wait_for(it.__anext__(), max(left, 0.001))
        except StopAsyncIteration:
            return
        yield item
