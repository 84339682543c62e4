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

from training.errors import Busy, UpstreamFailed
from training.generation import GenerationRequest, GenerationResult, TokenLogprob

__all__ = [
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

    async def add_adapter(self, name: str, path: Path) -> None: ...

    async def generate(self, req: GenerationRequest) -> GenerationResult: ...

    def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]: ...
