"""The engine Protocol: the app renders the prompt (with the adapter's chat template) and an engine turns it
into text, optionally with a LoRA adapter, optionally streamed. Both engines receive the identical token ids.

    from service.engines.base import Engine, GenerationRequest
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable


class EngineBusy(Exception):
    """The engine's queue is full; the app answers 429 with Retry-After."""


class EngineError(Exception):
    """The engine failed (vLLM down, bad adapter); the app answers 502/503."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt_ids: list[int]
    adapter: str | None = None  # None → base model (adapters disabled)
    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: Sequence[str] = ()
    seed: int | None = None


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"] = "stop"


@dataclass
class StreamDelta:
    """One streamed piece of text; the last item a stream yields is the final ``GenerationResult``."""

    text: str
    extra: dict = field(default_factory=dict)


@runtime_checkable
class Engine(Protocol):
    kind: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ready(self) -> bool: ...

    def adapters(self) -> list[str]: ...

    async def add_adapter(self, name: str, path: Path) -> None: ...

    async def generate(self, req: GenerationRequest) -> GenerationResult: ...

    def stream(self, req: GenerationRequest) -> AsyncIterator[StreamDelta | GenerationResult]: ...


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` at the first stop sequence (OpenAI never returns the stop text); True when one was
    found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def safe_prefix_len(text: str, stops: Sequence[str]) -> int:
    """How much of a growing ``text`` can be streamed without maybe emitting the start of a stop sequence."""
    hold = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return len(text) - hold
