"""The OpenAI-compatible HTTP service: ``create_app(settings)`` → FastAPI. Only wiring lives here: middleware,
error handlers, the start-up that builds the service state, and the route modules under ``service/routes``.

    imprint serve --adapter .imprint/adapters/family --kb shop          # embedded engine on 127.0.0.1:8000
    python -c "import openai; c = openai.OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='x'); \\
        print(c.chat.completions.create(model='imprint', messages=[{'role': 'user', 'content': 'hi'}]))"

Endpoints: ``POST /v1/chat/completions`` (plain and SSE), ``GET /v1/models``, ``POST /v1/adapters``,
``POST /v1/kb/{name}/reindex``, ``GET /v1/kb/{name}/search``, and the open ``/healthz``, ``/readyz``,
``/metrics``. Errors are OpenAI-shaped for every route (``service.errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI

from service.config import ServeConfig
from service.deps import require_key
from service.engines.base import Engine
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import BodyLimit
from service.routes import adapters, chat, health, models
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
    install_error_handlers(app)
    app.include_router(health.router)
    keyed = [Depends(require_key)]
    for module in (models, chat, adapters, kb_routes):
        app.include_router(module.router, dependencies=keyed)
    return app
