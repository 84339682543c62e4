"""EmbeddedEngine on the real tiny model: bounded queue, stop sequences, streaming, hot reload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.engines.base import EngineBusy, StreamDelta
from tests.service.factories import make_adapter
from training.generation import GenerationRequest, GenerationResult, safe_prefix_len, trim_at_stop

PROMPT = [1, 40, 41, 42, 43]


def test_stop_helpers():
    assert trim_at_stop("abc<end>def", ["<end>", "zz"]) == ("abc", True)
    assert trim_at_stop("abc", ["<end>"]) == ("abc", False)
    assert safe_prefix_len("hello <e", ["<end>"]) == len("hello ")
    assert safe_prefix_len("hello", []) == 5


def test_queue_is_bounded_and_busy_is_raised(make_engine):
    engine = make_engine(max_queue=2)

    async def run() -> list[object]:
        await engine.start()
        req = GenerationRequest(prompt_ids=PROMPT, adapter="alpha", max_tokens=40)
        return await asyncio.gather(*(engine.generate(req) for _ in range(5)), return_exceptions=True)

    results = asyncio.run(run())
    assert sum(isinstance(r, EngineBusy) for r in results) == 3
    done = [r for r in results if isinstance(r, GenerationResult)]
    assert len(done) == 2 and done[0].text == done[1].text  # greedy, same adapter
    assert engine.queued == 0


def test_stream_equals_generate_and_stop_is_trimmed(make_engine):
    engine = make_engine()

    async def run() -> tuple[GenerationResult, list[object], GenerationResult, str]:
        await engine.start()
        req = GenerationRequest(prompt_ids=PROMPT, adapter="beta", max_tokens=12)
        full = await engine.generate(req)
        items = [x async for x in engine.stream(req)]
        stop_at = full.text[3:5]
        stopped = await engine.generate(
            GenerationRequest(prompt_ids=PROMPT, adapter="beta", max_tokens=12, stop=(stop_at,))
        )
        return full, items, stopped, stop_at

    full, items, stopped, stop_at = asyncio.run(run())
    assert "".join(i.text for i in items if isinstance(i, StreamDelta)) == full.text
    assert isinstance(items[-1], GenerationResult) and items[-1].completion_tokens == full.completion_tokens
    assert full.finish_reason == "length" and full.completion_tokens == 12
    assert stop_at not in stopped.text and full.text.startswith(stopped.text)
    assert stopped.finish_reason == "stop"


def test_hot_reload_under_the_same_name_changes_the_weights(make_engine, tiny_phi3_base, tmp_path: Path):
    engine = make_engine(names=("alpha",))
    other = make_adapter(tiny_phi3_base, tmp_path / "alpha2", "alpha", seed=99, knowledge=[])

    async def run() -> tuple[str, str, list[str]]:
        await engine.start()
        req = GenerationRequest(prompt_ids=PROMPT, adapter="alpha", max_tokens=8)
        before = (await engine.generate(req)).text
        await engine.add_adapter("alpha", other)
        return before, (await engine.generate(req)).text, engine.adapters()

    before, after, names = asyncio.run(run())
    assert before != after and names == ["alpha"]


def test_unknown_adapter_is_an_engine_error(make_engine):
    from service.engines.base import EngineError

    engine = make_engine(names=("alpha",))

    async def run() -> None:
        await engine.start()
        await engine.generate(GenerationRequest(prompt_ids=PROMPT, adapter="nope"))

    with pytest.raises(EngineError, match="not loaded"):
        asyncio.run(run())
