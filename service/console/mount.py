"""Mounting the web console on the app: the public page (``service.console.routes``) and the small keyed API
extras it reads that no other route gives — ``POST /v1/data/check`` (``service.routes.data``), ``GET /v1/kb``
and ``/v1/kb/{name}/documents`` (``service.routes.kb_browse``).

    include_console(app, keyed=[Depends(require_key)])     # in service.app.create_app
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from service.console import routes as page
from service.routes import data, kb_browse


def include_console(app: FastAPI, keyed: list[Any]) -> None:
    app.include_router(page.router)  # the page is public; everything it shows comes from keyed routes
    for module in (data, kb_browse):
        app.include_router(module.router, dependencies=keyed)
