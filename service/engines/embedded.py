"""Embedded engine: transformers + peft in this process — one base model, several LoRA adapters, switched per
request. The default for ``imprint serve`` on CPU, and what ``imprint eval`` answers with.

Generation itself is ``training.generation.generate`` (the one implementation); this engine adds what serving
needs around it: ONE worker thread (adapter switching is model-global state, and two cores gain nothing from
parallel generate calls), off the event loop; at most ``max_queue`` waiting requests (more get ``EngineBusy``
→ HTTP 429 with Retry-After, so a burst never piles up unbounded work); a timeout; streaming.

Every request carries a cancel flag checked once per generated token: when its caller goes away (client
disconnect, request timeout — the awaiting task is cancelled) or the engine closes (shutdown), generation
stops within a token and the worker is free for the next request. Hot-loading is load-then-switch
(``service.engines.peft_swap``): a failed load leaves the serving version untouched.

    engine = EmbeddedEngine(model, tokenizer, adapters={"family": Path("adapters/family")})
    await engine.start(); await engine.generate(GenerationRequest(prompt_ids=[...], adapter="family"))
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.engines.base import EngineBusy, EngineError, StreamDelta
from service.engines.peft_swap import AdapterSlots
from training.chat import stop_token_ids
from training.generation import (
    GenerationRequest,
    GenerationResult,
    OnToken,
    TokenLogprob,
    adapter_context,
    generate,
    safe_prefix_len,
    trim_at_stop,
)

log = logging.getLogger("imprint.engine.embedded")
T = TypeVar("T")


class EmbeddedEngine:
    kind = "embedded"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        adapters: dict[str, Path] | None = None,
        max_queue: int = 16,
        timeout_s: float = 300.0,
    ) -> None:
        self._slots = AdapterSlots(model, tokenizer)  # given an already wrapped model, its adapters serve
        self.max_context: int | None = getattr(model.config, "max_position_embeddings", None)
        self.tokenizer = tokenizer
        self._initial = dict(adapters or {})
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._pending = 0
        self._running = 0  # generations on the worker right now (0 or 1)
        self._closing = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imprint-generate")

    # ── lifecycle ──
    async def start(self) -> None:
        for name, path in self._initial.items():
            await self.add_adapter(name, path)

    async def close(self) -> None:
        self._closing.set()  # a generation still running stops at its next token
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def ready(self) -> bool:
        return not self._closing.is_set() and all(n in self._slots for n in self._initial)

    def adapters(self) -> list[str]:
        return self._slots.names()

    @property
    def queued(self) -> int:
        return self._pending

    @property
    def busy(self) -> bool:
        """Whether a generation is running on the worker (a cancelled one stops within a token)."""
        return self._running > 0

    async def add_adapter(self, name: str, path: Path) -> None:
        """Load-then-switch on the worker thread, between two generations (``AdapterSlots.swap``)."""
        await self._run(self._slots.swap, name, Path(path))

    # ── generation ──
    async def _run(self, fn: Callable[..., T], *args: Any, cancel: threading.Event | None = None) -> T:
        if self._pending >= self.max_queue:
            raise EngineBusy(f"{self._pending} requests are already queued (max_queue={self.max_queue})")
        self._pending += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            return await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError as exc:
            raise EngineError(f"generation took longer than {self.timeout_s:.0f} s") from exc
        finally:
            # Done, failed, timed out or the caller went away (CancelledError): a generation still
            # running for this request stops at its next token.
            if cancel is not None:
                cancel.set()
            self._pending -= 1

    def _generate_sync(
        self,
        req: GenerationRequest,
        cancel: threading.Event,
        on_token: OnToken | None = None,
        done: Callable[[], None] | None = None,
    ) -> GenerationResult:
        self._running += 1
        try:
            if req.adapter is not None and req.adapter not in self._slots:
                raise EngineError(f"adapter {req.adapter!r} is not loaded (loaded: {self._slots.names()})")
            if cancel.is_set():  # the caller left while this waited in the queue
                return GenerationResult("", len(req.prompt_ids), 0, "cancelled")
            model = self._slots.model
            with adapter_context(model, self._slots.internal(req.adapter)):
                return generate(
                    model,
                    self.tokenizer,
                    req,
                    on_token=on_token,
                    should_stop=lambda: cancel.is_set() or self._closing.is_set(),
                )
        finally:
            self._running -= 1
            if done is not None:
                done()  # wake the streaming consumer even when generation failed or never started

    async def generate(self, req: GenerationRequest) -> GenerationResult:
        cancel = threading.Event()
        return await self._run(self._generate_sync, req, cancel, cancel=cancel)

    async def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]:
        """Token by token: each delta is the text that became printable (a whole UTF-8 character, never
        the start of a stop string) with the logprobs of the tokens behind it. Tokens reach the event loop
        through ``call_soon_threadsafe``: no thread waits per stream."""
        if self._pending >= self.max_queue:  # fail before the worker is asked, so nothing waits on it
            raise EngineBusy(f"{self._pending} requests are already queued (max_queue={self.max_queue})")
        loop = asyncio.get_running_loop()
        tokens: asyncio.Queue[tuple[int, TokenLogprob | None] | None] = asyncio.Queue()

        def put(item: tuple[int, TokenLogprob | None] | None) -> None:
            loop.call_soon_threadsafe(tokens.put_nowait, item)

        cancel = threading.Event()
        task = asyncio.ensure_future(
            self._run(
                self._generate_sync, req, cancel, lambda t, lp: put((t, lp)), lambda: put(None), cancel=cancel
            )
        )
        # If the job never reaches the worker (queue full by now, cancelled), end the token stream here.
        task.add_done_callback(lambda t: t.cancelled() or t.exception() is None or tokens.put_nowait(None))
        eos = set(stop_token_ids(self.tokenizer))
        ids: list[int] = []
        held: list[TokenLogprob] = []
        sent = 0
        try:
            while (item := await tokens.get()) is not None:
                token_id, lp = item
                if token_id in eos:
                    continue
                ids.append(token_id)
                held += [lp] if lp is not None else []
                text = self.tokenizer.decode(ids, skip_special_tokens=True)
                if text.endswith("\ufffd"):  # half a UTF-8 character: wait for the rest
                    continue
                visible, stopped = trim_at_stop(text, req.stop)
                upto = len(visible) if stopped else safe_prefix_len(visible, req.stop)
                if upto > sent:
                    yield StreamDelta(visible[sent:upto], logprobs=held or None)
                    sent, held = upto, []
                if stopped:
                    break
            result = await task
        finally:
            if not task.done():  # the consumer left (client gone, timeout) or a stop string matched
                cancel.set()
                task.cancel()
        if len(result.text) > sent:
            yield StreamDelta(result.text[sent:], logprobs=held or None)
        yield result
