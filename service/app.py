"""The OpenAI-compatible HTTP service: ``create_app(settings)`` → FastAPI. Only wiring lives here: middleware,
error handlers, the start-up that builds the service state, and the route modules under ``service/routes``.

    imprint serve --adapter .imprint/adapters/family --kb shop          # embedded engine on 127.0.0.1:8000
    python -c "import openai; c = openai.OpenAI(base_url='http://127.0.0.1:8000/v1', api_key='x'); \\
        print(c.chat.completions.create(model='imprint', messages=[{'role': 'user', 'content': 'hi'}]))"

Endpoints: ``POST /v1/chat/completions`` (plain and SSE), ``POST /v1/responses`` (plain and SSE),
``POST /v1/embeddings``, ``GET /v1/models`` and ``/v1/models/{id}``, ``POST /v1/adapters``, the adapter
registry (``GET /v1/adapters``, ``…/{name}/promote``, ``…/rollback``, ``…/staleness``; ``service.lifecycle``),
``/v1/schedules`` (retraining as jobs), ``POST /v1/kb/{name}/reindex``, ``GET /v1/kb/{name}/search``, the
Files and fine-tuning jobs API (``/v1/files``, ``/v1/fine_tuning/jobs``; ``service.jobs``), the web console at
``/`` with its extras (``service.console.mount``), and the open ``/healthz``, ``/readyz``, ``/metrics``.
``/docs``, ``/redoc`` and ``/openapi.json`` are behind the key unless ``docs: open`` (or off). Errors are
OpenAI-shaped for every route (``service.errors``) and never show absolute server paths. Browsers may call
from the ``cors_origins`` of the config (none by default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from service.config import ServeConfig
from service.console.mount import include_console
from service.deps import require_key
from service.engines.base import Engine
from service.errors import install_error_handlers
from service.jobs.service import start_jobs
from service.lifecycle.service import start_lifecycle
from service.metrics import Metrics
from service.middleware import BodyLimit
from service.redact import PathRedactor, kb_roots
from service.routes import (
    adapter_versions,
    adapters,
    chat,
    docs,
    embeddings,
    files,
    fine_tuning,
    health,
    models,
    responses,
    schedules,
)
from service.routes import kb as kb_routes
from service.state import ServiceState, start_state


def path_redactor(settings: ServeConfig, state: ServiceState | None = None) -> PathRedactor:
    """Paths under the adapter roots, the served adapters' folders, the KB's document folders and
    $IMPRINT_HOME are shown relative to them; any other absolute path by its last part."""
    from training.paths import imprint_home

    roots: list[Any] = [*settings.allowed_adapter_roots(), *(p.parent for p in settings.adapters)]
    roots.append(settings.home or imprint_home())
    if state is not None:
        roots += kb_roots(state.pipeline.kb)
    return PathRedactor(roots)


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
        app.state.redactor = path_redactor(settings, state)
        app.state.jobs = await start_jobs(settings, state.pipeline)
        app.state.lifecycle = await start_lifecycle(settings, app.state.jobs, app.state.metrics)
        try:
            yield
        finally:
            app.state.imprint = None
            await app.state.lifecycle.close()
            await app.state.jobs.close()
            await state.close()

    open_docs = settings.docs == "open"
    app = FastAPI(
        title="Imprint",
        version="1",
        lifespan=lifespan,
        docs_url="/docs" if open_docs else None,
        redoc_url="/redoc" if open_docs else None,
        openapi_url="/openapi.json" if open_docs else None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.imprint = None
    app.state.jobs = None
    app.state.lifecycle = None
    app.state.redactor = path_redactor(settings)
    app.add_middleware(
        BodyLimit,  # type: ignore[arg-type]
        limit=settings.max_request_bytes,
        # uploads stream to disk; their own limit (the console's data check reads the same files)
        overrides={"/v1/files": settings.files_max_bytes, "/v1/data/check": settings.files_max_bytes},
    )
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
    for module in (
        models,
        chat,
        responses,
        embeddings,
        adapters,
        adapter_versions,
        kb_routes,
        files,
        fine_tuning,
        schedules,
    ):
        app.include_router(module.router, dependencies=keyed)
    include_console(app, keyed)
    if settings.docs == "keyed":
        app.include_router(docs.router, dependencies=keyed)
    return app
