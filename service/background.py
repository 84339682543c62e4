"""Run an app with uvicorn on a background thread (tests, the demo, benchmarks); ``service.launch`` is the
foreground ``imprint serve``.

    with serve_in_thread(app) as base_url:   # e.g. "http://127.0.0.1:41234"
        openai.OpenAI(base_url=base_url + "/v1", api_key="x").models.list()
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int | None = None, startup_timeout_s: float = 600.0
) -> Iterator[str]:
    """Start uvicorn on a thread, wait until the app's startup (model loading) finished, stop it on exit."""
    port = port or free_port(host)
    settings = getattr(app.state, "settings", None)
    grace = getattr(settings, "shutdown_grace_s", None)  # in-flight requests get this long on stop
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=grace
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="imprint-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server stopped during startup (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError(f"the server did not start within {startup_timeout_s:.0f} s")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
