"""``imprint serve`` in the foreground: check the KB exists, optionally start vLLM, run the app with uvicorn.

    imprint serve --adapter .imprint/adapters/family --kb shop
    imprint serve --adapter DIR --engine vllm --start-vllm            # launches vLLM (CPU build or GPU)
    IMPRINT_API_KEYS=k1 imprint serve --adapter DIR --host 0.0.0.0     # non-loopback needs API keys

(``service.background.serve_in_thread`` runs the same app on a thread: tests, the demo, benchmarks.)
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from pathlib import Path

from service.config import ServeConfig
from training.errors import NotFound

log = logging.getLogger("imprint.service")


def vllm_device() -> str:
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def run_serve(cfg: ServeConfig) -> None:
    import uvicorn

    from service.app import create_app
    from training.adapter import read_adapter

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if cfg.kb and not cfg.chroma_url:
        from indexing.registry import list_kbs

        names = [k.get("name") for k in list_kbs(cfg.home)]
        if cfg.kb not in names:
            raise NotFound(
                f"knowledge base {cfg.kb!r} not found (have: {names or 'none'}); build it first: "
                f"imprint index PATH... --kb {cfg.kb}",
                param="kb",
            )
    # uvicorn handles SIGTERM by shutting down and then re-raising it with the default handler, which kills
    # this process before the ExitStack can stop the vLLM it started (an orphan holding the GPU and the port).
    # Turning SIGTERM into SystemExit lets every `with` block below unwind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.ExitStack() as stack:
        if cfg.start_vllm:
            from service.background import free_port
            from service.engines.vllm_launch import VLLMLaunch, VLLMServer
            from training.models import DEFAULT_BASE_MODEL, resolve_base_model

            adapters = [read_adapter(p) for p in cfg.adapters]
            base_name = cfg.base_model or (adapters[0].base_model if adapters else DEFAULT_BASE_MODEL)
            launch = VLLMLaunch(
                model=resolve_base_model(base_name).path,
                device=vllm_device(),  # type: ignore[arg-type]
                adapters={a.name: a.path for a in adapters},
                port=free_port(),
            )
            log.info("starting vLLM (%s) on %s — 30–60 s on CPU", launch.device, launch.url())
            server = stack.enter_context(VLLMServer(launch, log_path=Path("vllm.log")))
            cfg = cfg.model_copy(update={"vllm_url": server.url, "start_vllm": False})
        # On SIGTERM uvicorn stops accepting, lets in-flight requests finish for shutdown_grace_s, then
        # cancels them (their generations stop at the next token) and the engine closes.
        uvicorn.run(
            create_app(cfg),
            host=cfg.host,
            port=cfg.port,
            log_level="info",
            timeout_graceful_shutdown=cfg.shutdown_grace_s,
        )
