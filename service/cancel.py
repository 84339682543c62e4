"""Stop work nobody waits for: run a coroutine until it finishes or the HTTP client disconnects.

    try:
        result = await until_disconnected(request, engine.generate(gen_req))
    except ClientGone:
        return Response(status_code=499)     # nginx's "client closed request"; nobody reads it

Cancelling the coroutine is what stops the work: the engines turn a cancelled caller into a stopped
generation (embedded: the request's cancel flag, checked per token; vLLM: the HTTP request is closed and
vLLM aborts it). Streamed responses need no polling: Starlette cancels the stream when the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")
POLL_S = 0.1  # a disconnect is noticed within this long (a few tokens of generation)
CLIENT_CLOSED = 499


class ClientGone(Exception):
    """The client disconnected before its answer was ready; the work was cancelled."""


async def until_disconnected(request: Request, work: Awaitable[T], *, poll_s: float = POLL_S) -> T:
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=poll_s)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise ClientGone
    finally:
        if not task.done():  # we were cancelled ourselves (request timeout, shutdown)
            task.cancel()
