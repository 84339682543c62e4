"""The ways ``imprint eval`` answers a question — every one of them through the SERVING path (the
service's ``Pipeline`` on the embedded engine, exactly what ``imprint serve`` runs), so an eval number is
what users get:

| mode     | model name it asks for | what answers                                                        |
|----------|------------------------|---------------------------------------------------------------------|
| base     | ``imprint-base``       | the base model alone                                                |
| ft       | ``imprint-adapter``    | the adapter alone, no retrieval                                     |
| rag      | ``imprint-rag``        | the base model + the top retrieved chunks (classic RAG)             |
| hybrid   | ``imprint``            | the router: adapter alone, adapter + context, context, or abstain   |

    from eval.modes import EvalSession
    session = EvalSession(adapter=Path(".imprint/adapters/family"), kb="shop")
    answers = session.answer("hybrid", ["老大是谁?"])

One base model is loaded per session and shared by all modes (the adapter is a LoRA on top of it).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.errors import InvalidInput

MODES: dict[str, str] = {
    "base": "imprint-base",
    "ft": "imprint-adapter",
    "rag": "imprint-rag",
    "hybrid": "imprint",
}
NEEDS_ADAPTER = {"ft"}
NEEDS_KB = {"rag"}


@dataclass(frozen=True)
class Answer:
    answer: str
    prompt_tokens: int
    completion_tokens: int
    route: str
    reason: str
    cited: list[str] = field(default_factory=list)  # doc ids the answer cites


def mode_problems(modes: list[str], *, adapter: Path | None, kb: str | None) -> list[str]:
    problems = []
    for m in modes:
        if m not in MODES:
            problems.append(f"modes: unknown eval mode {m!r}; available: {', '.join(MODES)}")
        elif m in NEEDS_ADAPTER and adapter is None:
            problems.append(f"adapter: mode {m!r} needs --adapter DIR (or drop it from --modes)")
        elif m in NEEDS_KB and kb is None:
            problems.append(f"kb: mode {m!r} needs --kb NAME (a knowledge base built with `imprint index`)")
    return problems


@dataclass
class EvalSession:
    """The serving pipeline for one eval run, built on first use and shared by every mode."""

    adapter: Path | None = None
    kb: str | None = None
    kb_home: Path | None = None  # where the KB lives (default $IMPRINT_HOME)
    base_model: str | None = None  # default: the adapter's base, else the embedded default
    max_new_tokens: int = 64
    check_answers: bool | None = None  # None: what `imprint serve` would do (on unless configured off)
    _pipeline: Any = None

    def pipeline(self) -> Any:
        if self._pipeline is None:
            self._pipeline = self._build()
        return self._pipeline

    def _build(self) -> Any:
        from indexing.registry import get_kb
        from service.config import ServeConfig
        from service.engines.embedded import EmbeddedEngine
        from service.state import build_pipeline
        from training.adapter import read_adapter
        from training.models import DEFAULT_BASE_MODEL, load_base_model, resolve_base_model

        info = read_adapter(self.adapter) if self.adapter else None
        base = resolve_base_model(self.base_model or (info.base_model if info else DEFAULT_BASE_MODEL))
        model, tokenizer = load_base_model(base)
        engine = EmbeddedEngine(
            model, tokenizer, adapters={info.name: info.path} if info else {}, max_queue=10_000
        )
        asyncio.run(engine.start())
        kb = get_kb(self.kb, home=self.kb_home) if self.kb else None
        # The router settings `imprint serve` would use for this KB (env/defaults): eval measures the service.
        settings = ServeConfig.load(default_max_tokens=self.max_new_tokens, check_answers=self.check_answers)
        return build_pipeline(
            settings, engine, tokenizer, [info] if info else [], kb, base_chat_template=base.chat_template
        )

    def calibration(self) -> dict[str, Any]:
        """The thresholds the routed model uses for each served adapter, calibrated on its own data: the
        semantic match (``service.semantic``, with this KB's embedder) and the adapter-alone confidence
        (``imprint.json`` → memorisation check), plus the training questions it still misses."""
        pipeline = self.pipeline()
        out: dict[str, Any] = {}
        for name, info in pipeline.adapters.items():
            semantic = pipeline.semantic
            memo = info.memorization or {}
            out[name] = {
                "semantic": asdict(c) if semantic and (c := semantic.calibration(info)) else None,
                "semantic_fixed": semantic.fixed if semantic else None,
                "confidence": (memo.get("calibration") or {}).get("confidence"),
                "memorized": f"{memo['passed']}/{memo['checked']}" if memo.get("checked") else None,
                "missed": memo.get("missed", []),
            }
        return out

    def answer(self, mode: str, questions: list[str], *, json_mode: bool = False) -> list[Answer]:
        """``json_mode``: ask with ``response_format: json_object`` (JSON answers, scored per field)."""
        if problems := mode_problems([mode], adapter=self.adapter, kb=self.kb):
            raise InvalidInput("; ".join(problems), param="modes")
        pipeline = self.pipeline()
        return asyncio.run(_ask_all(pipeline, MODES[mode], questions, self.max_new_tokens, json_mode))


async def _ask_all(
    pipeline: Any, model: str, questions: list[str], max_tokens: int, json_mode: bool = False
) -> list[Answer]:
    from service.schema import ChatCompletionRequest

    out = []
    fmt = {"type": "json_object"} if json_mode else None
    for q in questions:
        req = ChatCompletionRequest(
            model=model,
            messages=[{"role": "user", "content": q}],
            max_tokens=max_tokens,
            temperature=0,
            response_format=fmt,
        )
        plan, result = await pipeline.complete(req)
        info = plan.info(result.text)
        out.append(
            Answer(
                result.text,
                result.prompt_tokens,
                result.completion_tokens,
                plan.route,
                plan.reason,
                [c.doc_id for c in info.citations if c.cited],
            )
        )
    return out
