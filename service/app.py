"""The OpenAI-compatible HTTP service: ``create_app(settings)`` → FastAPI. Only wiring lives here: middleware,
error handlers, the start-up that builds the service state, and the route modules under ``service/routes``.

    imprint serve --adapter .imprint/adapters/family --kb shop          # embedded engine on 127.0.0.1:8000
    python -c "import openai; c = openai.OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='x'); \\
        print(c.chat.completions.create(model='imprint', messages=[{'role': 'user', 'content': 'hi'}]))"

Endpoints: ``POST /v1/chat/completions`` (plain and SSE), ``POST /v1/responses`` (plain and SSE),
``POST /v1/embeddings``, ``GET /v1/models`` and ``/v1/models/{id}``, ``POST /v1/adapters``,
``POST /v1/kb/{name}/reindex``, ``GET /v1/kb/{name}/search``, and the open ``/healthz``, ``/readyz``,
``/metrics``. Errors are OpenAI-shaped for every route (``service.errors``). Browsers may call from the
``cors_origins`` of the config (none by default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.config import ServeConfig
from service.deps import require_key
from service.engines.base import Engine
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import BodyLimit
from service.routes import adapters, chat, embeddings, health, models, responses
from service.routes import kb as kb_routes
from service.state import start_state


def create_app(
    settings: ServeConfig, *, engine: Engine | None = None, tokenizer: Any = None, kb: Any = None
) -> FastAPI:
    """Build the app. ``engine``/``tokenizer``/``kb`` may be injected (tests, benchmarks); otherwise they are
    built from ``settings`` when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await start_state(
            settings, metrics=app.state.metrics, engine=engine, tokenizer=tokenizer, kb=kb
        )
        app.state.imprint = state
        try:
            yield
        finally:
            app.state.imprint = None
            await state.close()

    app = FastAPI(title="Imprint", version="1", lifespan=lifespan)
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.imprint = None
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)  # type: ignore[arg-type]
    if settings.cors_origins:  # outermost, so a preflight is answered before auth or the body limit
        app.add_middleware(
            CORSMiddleware,  # type: ignore[arg-type]
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],  # Authorization, Content-Type and the SDKs' x-stainless-* headers
        )
    install_error_handlers(app)
    app.include_router(health.router)
    keyed = [Depends(require_key)]
    for module in (models, chat, responses, embeddings, adapters, kb_routes):
        app.include_router(module.router, dependencies=keyed)
    return app
