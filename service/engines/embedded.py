"""Embedded engine: transformers + peft in this process — one base model, several LoRA adapters, switched per
request (``set_adapter``; ``disable_adapter()`` for the base). The default for ``imprint serve`` on CPU.

Generation runs on ONE worker thread (adapter switching is model-global state, and two cores gain nothing from
parallel generate calls), off the event loop. At most ``max_queue`` requests wait; more get ``EngineBusy`` →
HTTP 429 with Retry-After, so a burst never piles up unbounded work.

    engine = EmbeddedEngine(model, tokenizer, adapters={"family": Path("adapters/family")})
    await engine.start(); await engine.generate(GenerationRequest(prompt_ids=[...], adapter="family"))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from service.engines.base import (
    EngineBusy,
    EngineError,
    GenerationRequest,
    GenerationResult,
    StreamDelta,
    safe_prefix_len,
    trim_at_stop,
)

log = logging.getLogger("imprint.engine.embedded")
T = TypeVar("T")

# Tokens that end an assistant turn in the templates we train with (Gemma, Phi-4); generation stops on them.
END_OF_TURN = ("<end_of_turn>", "<|im_end|>", "<|endoftext|>", "<eos>")


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Ids that end an answer: EOS plus the chat templates' end-of-turn markers (both engines use them)."""
    vocab = tokenizer.get_vocab()
    return sorted(
        {i for i in [tokenizer.eos_token_id, *(vocab.get(t) for t in END_OF_TURN)] if i is not None}
    )


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
        self._peft = hasattr(model, "peft_config")
        self.max_context: int | None = getattr(
            model.config, "max_position_embeddings", None
        )  # given an already wrapped model (eval shares one)
        self.tokenizer = tokenizer
        self._initial = dict(adapters or {})
        self._names: list[str] = list(model.peft_config) if self._peft else []
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self._pending = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imprint-generate")
        self._eos_ids = end_of_turn_ids(tokenizer)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self._eos_ids[0]

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

    def _generate_sync(self, req: GenerationRequest, streamer: Any = None) -> GenerationResult:
        import torch

        try:
            if req.adapter is not None and req.adapter not in self._names:
                raise EngineError(f"adapter {req.adapter!r} is not loaded (loaded: {self._names})")
            ids = torch.tensor([req.prompt_ids], dtype=torch.long, device=self._model.device)
            kwargs: dict[str, Any] = {
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "max_new_tokens": req.max_tokens,
                "eos_token_id": self._eos_ids,
                "pad_token_id": self._pad_id,
                "streamer": streamer,
            }
            if req.temperature > 0:
                kwargs.update(do_sample=True, temperature=req.temperature, top_p=req.top_p, top_k=0)
                if req.seed is not None:
                    torch.manual_seed(req.seed)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if req.stop:
                kwargs.update(stop_strings=list(req.stop), tokenizer=self.tokenizer)
            ctx: Any = contextlib.nullcontext()
            if self._peft:
                if req.adapter is None:
                    ctx = self._model.disable_adapter()
                else:
                    self._model.set_adapter(req.adapter)
            with ctx, torch.inference_mode():
                out = self._model.generate(**kwargs)
            new = out[0, ids.shape[1] :].tolist()
            ended = bool(new) and new[-1] in self._eos_ids
            text, stopped = trim_at_stop(self.tokenizer.decode(new, skip_special_tokens=True), req.stop)
            finish = "length" if len(new) >= req.max_tokens and not ended and not stopped else "stop"
            return GenerationResult(text, len(req.prompt_ids), len(new), finish)
        except Exception:
            if streamer is not None:
                streamer.end()  # wake the consumer, which then sees the exception through the future
            raise

    async def generate(self, req: GenerationRequest) -> GenerationResult:
        return await self._run(self._generate_sync, req)

    async def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]:
        from transformers import TextIteratorStreamer

        if self._pending >= self.max_queue:  # fail before the streamer exists, so nothing waits on it
            raise EngineBusy(f"{self._pending} requests are already queued (max_queue={self.max_queue})")
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        task = asyncio.ensure_future(self._run(self._generate_sync, req, streamer))
        pieces = iter(streamer)
        text, sent = "", 0
        try:
            while True:
                piece = await asyncio.to_thread(next, pieces, None)
                if piece is None:
                    break
                text += piece
                visible, stopped = trim_at_stop(text, req.stop)
                upto = len(visible) if stopped else safe_prefix_len(visible, req.stop)
                if upto > sent:
                    yield StreamDelta(visible[sent:upto])
                    sent = upto
                if stopped:
                    break
            result = await task
        finally:
            if not task.done():
                streamer.end()
                with contextlib.suppress(Exception):
                    await task
        if result.text.startswith(text[:sent]) and len(result.text) > sent:
            yield StreamDelta(result.text[sent:])
        yield result
