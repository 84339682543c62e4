"""The ``rag`` and ``hybrid`` modes of ``imprint eval`` (registered into ``eval.modes.MODES``).

- ``rag``: the base model (adapter disabled) + the top retrieved chunks in the context prompt — classic RAG;
- ``hybrid``: the full router in-process — adapter alone, adapter + context, or abstain — exactly what the
  ``imprint`` model of ``imprint serve`` answers.

Both run the service's ``Pipeline`` on the SAME loaded model as ``base``/``ft`` (no second copy) and report
prompt tokens per answer, so the table shows what retrieved context costs.

    imprint eval --questions Q.jsonl --adapter DIR --kb shop --modes base,ft,rag,hybrid
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from eval.modes import Answer, Mode, ModeContext, register_mode


def _pipeline(ctx: ModeContext) -> Any:
    if "pipeline" in ctx.cache:
        return ctx.cache["pipeline"]
    from service.adapters import read_served_adapter
    from service.engines.embedded import EmbeddedEngine
    from service.pipeline import Pipeline

    model, tok, template, _ = ctx.model()
    adapters = []
    if ctx.adapter is not None:
        served = read_served_adapter(ctx.adapter)
        if served.name not in getattr(model, "peft_config", {}):
            # The shared model holds this adapter as "default"; a second name costs only the LoRA weights.
            model.load_adapter(str(served.path), adapter_name=served.name)
        adapters.append(served)
    kb = None
    if ctx.kb is not None:
        from indexing.kb import get_kb

        kb = get_kb(ctx.kb)
    engine = EmbeddedEngine(model, tok, max_queue=10_000)
    from service.app import router_config
    from service.config import ServeConfig

    # The router settings `imprint serve` would use for this KB (env/defaults): eval measures the service.
    settings = ServeConfig.load()
    router = router_config(settings, kb)
    pipeline = Pipeline(
        engine,
        tok,
        adapters,
        kb=kb,
        router=router,
        retrieval_k=settings.retrieval_k,
        default_max_tokens=ctx.max_new_tokens,
        base_chat_template=template,
    )
    ctx.cache["pipeline"] = pipeline
    return pipeline


@dataclass
class PipelineMode:
    ctx: ModeContext
    name: str
    model_name: str

    def answer(self, questions: list[str]) -> list[Answer]:
        from service.schema import ChatCompletionRequest

        pipeline = _pipeline(self.ctx)

        async def run() -> list[Answer]:
            out = []
            for q in questions:
                req = ChatCompletionRequest(
                    model=self.model_name,
                    messages=[{"role": "user", "content": q}],
                    max_tokens=self.ctx.max_new_tokens,
                    temperature=0,
                )
                _, result = await pipeline.complete(req)
                out.append(Answer(result.text, result.prompt_tokens, result.completion_tokens))
            return out

        return asyncio.run(run())


@register_mode("rag")
def rag_mode(ctx: ModeContext) -> Mode:
    if ctx.kb is None:
        raise ValueError("mode 'rag' needs --kb NAME (a knowledge base built with `imprint index`)")
    return PipelineMode(ctx, "rag", "imprint-rag")


@register_mode("hybrid")
def hybrid_mode(ctx: ModeContext) -> Mode:
    return PipelineMode(ctx, "hybrid", "imprint")
