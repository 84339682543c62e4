"""The engine Protocol: the app renders the prompt (with the adapter's chat template) and an engine turns it
into text, optionally with a LoRA adapter, optionally streamed. Both engines receive the identical token ids;
the request/result types are generation's contract (``training.generation``).

    from service.engines.base import Engine
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from training.errors import Busy, InvalidInput, UpstreamFailed
from training.generation import GenerationRequest, GenerationResult, TokenLogprob

__all__ = [
    "AdapterLoadFailed",
    "AdapterMismatch",
    "Engine",
    "EngineBusy",
    "EngineError",
    "GenerationRequest",
    "GenerationResult",
    "StreamDelta",
    "TokenLogprob",
]


class EngineBusy(Busy):
    """The engine's queue is full (HTTP 429 with Retry-After)."""

    default_code = "engine_busy"


class EngineError(UpstreamFailed):
    """The engine failed (vLLM down, an adapter it cannot load): HTTP 502."""

    default_code = "engine_error"


class AdapterLoadFailed(InvalidInput):
    """A hot-load whose weights cannot be loaded or fail the probe: HTTP 400 (``param: "path"``); the
    serving version is unchanged (``add_adapter`` is load-then-switch on every engine)."""

    default_code = "adapter_load_failed"


class AdapterMismatch(InvalidInput):
    """An adapter made for another base model (target modules or weight shapes do not fit): HTTP 400."""

    default_code = "adapter_mismatch"


@dataclass
class StreamDelta:
    """One streamed piece of text; the last item a stream yields is the final ``GenerationResult``."""

    text: str
    extra: dict = field(default_factory=dict)
    logprobs: list[TokenLogprob] | None = None  # the tokens behind ``text`` when the request asked for them


@runtime_checkable
class Engine(Protocol):
    kind: str
    max_context: int | None

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ready(self) -> bool: ...

    def adapters(self) -> list[str]: ...

    async def add_adapter(self, name: str, path: Path) -> None:
        """Serve ``path`` under ``name``: load beside the serving version, probe, then switch. On failure
        raise (AdapterLoadFailed/AdapterMismatch → 400) with the serving version untouched."""
        ...

    async def generate(self, req: GenerationRequest) -> GenerationResult: ...

    def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]: ...
