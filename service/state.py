"""What a running service holds — settings, engine, knowledge base, the pipeline, metrics — and how it is
built from ``ServeConfig`` at start-up. Routes reach it through ``service.deps``; eval builds the same
pipeline here.

    state = await start_state(ServeConfig.load(), metrics=Metrics())   # loads the model(s) and the KB
    ... await state.close()
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from service.config import ServeConfig
from service.engines.base import Engine
from service.metrics import Metrics
from service.pipeline import Pipeline
from service.routing import SEMANTIC_THRESHOLDS, RouterConfig
from training.adapter import AdapterInfo, read_adapter

log = logging.getLogger("imprint.service")


@dataclass
class ServiceState:
    settings: ServeConfig
    pipeline: Pipeline
    metrics: Metrics

    @property
    def engine(self) -> Engine:
        return self.pipeline.engine

    async def close(self) -> None:
        await self.pipeline.engine.close()


def build_engine(settings: ServeConfig, adapters: list[AdapterInfo]) -> tuple[Engine, Any]:
    """The engine + the tokenizer used to render and count prompts (both engines get identical token ids)."""
    from transformers import AutoTokenizer

    from training.chat import stop_token_ids
    from training.errors import InvalidInput
    from training.models import DEFAULT_BASE_MODEL, load_base_model, resolve_base_model

    bases = {a.base_model for a in adapters}
    if len(bases) > 1:
        raise InvalidInput(f"all served adapters must share one base model; got {sorted(bases)}")
    base_name = settings.base_model or (bases.pop() if bases else DEFAULT_BASE_MODEL)
    paths = {a.name: a.path for a in adapters}
    if settings.engine == "embedded":
        from service.engines.embedded import EmbeddedEngine

        model, tokenizer = load_base_model(resolve_base_model(base_name))
        engine = EmbeddedEngine(
            model,
            tokenizer,
            adapters=paths,
            max_queue=settings.max_queue,
            timeout_s=settings.request_timeout_s,
        )
        return engine, tokenizer
    from service.engines.vllm import VLLMEngine

    base_dir = resolve_base_model(base_name).path
    tokenizer = AutoTokenizer.from_pretrained(str(adapters[0].path) if adapters else base_dir)
    assert settings.vllm_url, "ServeConfig guarantees a vLLM URL for the vllm engine"
    engine = VLLMEngine(
        settings.vllm_url,
        adapters=paths,
        api_key=settings.vllm_api_key,
        timeout_s=settings.request_timeout_s,
        stop_token_ids=stop_token_ids(tokenizer),
        base_model_dir=base_dir,
    )
    return engine, tokenizer


def _embedder_name(kb: Any) -> str:
    """The KB's embedder, or the default one that matches paraphrases when no KB is served."""
    from indexing.embeddings import DEFAULT_EMBEDDER, canonical_name

    if kb is None:
        return canonical_name(DEFAULT_EMBEDDER)
    return canonical_name(str(getattr(kb, "manifest", {}).get("embedder", "")))


def dense_threshold_for(settings: ServeConfig, kb: Any) -> float:
    """The configured threshold, else the one measured for the KB's embedder (cosine scales differ)."""
    if settings.dense_threshold is not None:
        return settings.dense_threshold
    from indexing.embeddings import RELEVANCE_THRESHOLDS

    return RELEVANCE_THRESHOLDS.get(_embedder_name(kb), RouterConfig.dense_threshold)


def router_config(settings: ServeConfig, kb: Any) -> RouterConfig:
    """RouterConfig from the settings; per-embedder thresholds where the settings leave them open."""
    semantic = settings.semantic_threshold
    calibrate = semantic is None  # not configured: calibrated per adapter, the embedder's default as fallback
    if semantic is None:
        semantic = SEMANTIC_THRESHOLDS.get(_embedder_name(kb))
    return RouterConfig(
        dense_threshold=dense_threshold_for(settings, kb),
        lexical_threshold=settings.lexical_threshold,
        knowledge_threshold=settings.knowledge_threshold,
        max_context_hits=settings.max_context_hits,
        check_answers=settings.check_answers,
        paraphrase_wording=settings.paraphrase_wording,
        adapter_confidence=settings.adapter_confidence,
        semantic_threshold=semantic if semantic is not None and semantic <= 1 else None,
        semantic_calibration=calibrate,
    )


def open_kb(settings: ServeConfig) -> Any:
    """The process-wide KB instance: a re-index through the API updates this same object, so the next
    question sees the new facts without a restart."""
    from indexing.registry import get_kb

    assert settings.kb is not None
    return get_kb(settings.kb, home=settings.home, chroma_url=settings.chroma_url)


def build_pipeline(
    settings: ServeConfig,
    engine: Engine,
    tokenizer: Any,
    adapters: list[AdapterInfo],
    kb: Any,
    *,
    base_chat_template: str | None = None,
) -> Pipeline:
    return Pipeline(
        engine,
        tokenizer,
        adapters,
        kb=kb,
        retrieval_k=settings.retrieval_k,
        default_max_tokens=settings.default_max_tokens,
        max_tokens_limit=settings.max_tokens_limit,
        router=router_config(settings, kb),
        base_chat_template=base_chat_template,
    )


async def start_state(
    settings: ServeConfig,
    *,
    metrics: Metrics,
    engine: Engine | None = None,
    tokenizer: Any = None,
    kb: Any = None,
) -> ServiceState:
    """Load what ``settings`` names (engine/tokenizer/kb may be injected: tests, benchmarks) and start it."""
    from service.housekeeping import clean_orphaned_temps

    await asyncio.to_thread(clean_orphaned_temps, settings)
    adapters = [read_adapter(p) for p in settings.adapters]
    if engine is None:
        engine, tokenizer = await asyncio.to_thread(build_engine, settings, adapters)
    if kb is None and settings.kb:
        kb = await asyncio.to_thread(open_kb, settings)
    if kb is not None:
        log.info("knowledge base %s: %d chunks ready", kb.name, await asyncio.to_thread(kb.warm))
    await engine.start()
    pipeline = build_pipeline(settings, engine, tokenizer, adapters, kb)
    log.info("serving %s engine, adapters=%s kb=%s", engine.kind, [a.name for a in adapters], settings.kb)
    return ServiceState(settings, pipeline, metrics)
