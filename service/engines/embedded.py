"""Embedded engine: transformers + peft in this process — one base model, several LoRA adapters, switched per
request. The default for ``imprint serve`` on CPU, and what ``imprint eval`` answers with.

Generation itself is ``training.generation.generate`` (the one implementation); this engine adds what serving
needs around it: ONE worker thread (adapter switching is model-global state, and two cores gain nothing from
parallel generate calls), off the event loop; at most ``max_queue`` waiting requests (more get ``EngineBusy``
→ HTTP 429 with Retry-After, so a burst never piles up unbounded work); a timeout; streaming.

    engine = EmbeddedEngine(model, tokenizer, adapters={"family": Path("adapters/family")})
    await engine.start(); await engine.generate(GenerationRequest(prompt_ids=[...], adapter="family"))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.engines.base import EngineBusy, EngineError, StreamDelta
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
        self._model = model  # becomes the PeftModel once an adapter is loaded
        self._peft = hasattr(model, "peft_config")  # given an already wrapped model (eval shares one)
        self.max_context: int | None = getattr(model.config, "max_position_embeddings", None)
        self.tokenizer = tokenizer
        self._initial = dict(adapters or {})
        self._names: list[str] = list(model.peft_config) if self._peft else []
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._pending = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imprint-generate")

    # ── lifecycle ──
    async def start(self) -> None:
        for name, path in self._initial.items():
            await self.add_adapter(name, path)

    async def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def ready(self) -> bool:
        return all(n in self._names for n in self._initial)

    def adapters(self) -> list[str]:
        return list(self._names)

    @property
    def queued(self) -> int:
        return self._pending

    async def add_adapter(self, name: str, path: Path) -> None:
        await self._run(self._load_adapter, name, Path(path))

    def _load_adapter(self, name: str, path: Path) -> None:
        from peft import PeftModel

        if name in self._names:  # hot reload of a retrained version under the same name
            self._model.delete_adapter(name)
            self._names.remove(name)
        if not self._peft:
            self._model = PeftModel.from_pretrained(self._model, str(path), adapter_name=name)
            self._peft = True
        else:
            self._model.load_adapter(str(path), adapter_name=name)
        self._model.eval()
        self._names.append(name)
        log.info("loaded adapter %s from %s", name, path)

    # ── generation ──
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._pending >= self.max_queue:
            raise EngineBusy(f"{self._pending} requests are already queued (max_queue={self.max_queue})")
        self._pending += 1
        try:
            fut = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
            return await asyncio.wait_for(fut, self.timeout_s)
        except TimeoutError as exc:
            raise EngineError(f"generation took longer than {self.timeout_s:.0f} s") from exc
        finally:
            self._pending -= 1

    def _generate_sync(
        self, req: GenerationRequest, on_token: OnToken | None = None, done: Callable[[], None] | None = None
    ) -> GenerationResult:
        try:
            if req.adapter is not None and req.adapter not in self._names:
                raise EngineError(f"adapter {req.adapter!r} is not loaded (loaded: {self._names})")
            with adapter_context(self._model, req.adapter):
                return generate(self._model, self.tokenizer, req, on_token=on_token)
        finally:
            if done is not None:
                done()  # wake the streaming consumer, which then sees any exception through the future

    async def generate(self, req: GenerationRequest) -> GenerationResult:
        return await self._run(self._generate_sync, req)

    async def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]:
        """Token by token: each delta is the text that became printable (a whole UTF-8 character, never
        the start of a stop string) with the logprobs of the tokens behind it."""
        if self._pending >= self.max_queue:  # fail before the worker is asked, so nothing waits on it
            raise EngineBusy(f"{self._pending} requests are already queued (max_queue={self.max_queue})")
        tokens: queue.SimpleQueue[tuple[int, TokenLogprob | None] | None] = queue.SimpleQueue()
        task = asyncio.ensure_future(
            self._run(self._generate_sync, req, lambda t, lp: tokens.put((t, lp)), lambda: tokens.put(None))
        )
        eos = set(stop_token_ids(self.tokenizer))
        ids: list[int] = []
        held: list[TokenLogprob] = []
        sent = 0
        try:
            while (item := await asyncio.to_thread(tokens.get)) is not None:
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
            if not task.done():
                with contextlib.suppress(Exception):
                    await task
        if len(result.text) > sent:
            yield StreamDelta(result.text[sent:], logprobs=held or None)
        yield result
