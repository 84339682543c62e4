"""One chat request, end to end, without HTTP: resolve the model name → retrieve → route → render the prompt
with the adapter's chat template → generate → cite. Used by the chat route and by ``imprint eval`` (so an eval
number is what users get). Raises domain errors (``training.errors``); HTTP maps them.

Model names (listed by ``GET /v1/models``, routed one first):
- ``imprint``           routed (default): the router picks adapter / adapter+context / context / abstain;
- ``imprint-adapter``   the first adapter alone, no retrieval; ``imprint-adapter:<name>`` a given one;
- ``imprint-rag``       base model + the top retrieved chunks (classic RAG, no adapter);
- ``imprint-base``      base model alone (adapters disabled, no retrieval).

    plan, result = await Pipeline(engine, tokenizer, [read_adapter(DIR)], kb=kb).complete(request)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from service.answering import answer
from service.engines.base import Engine
from service.redact import kb_roots, public_source
from service.routing import (
    AdapterKnowledge,
    RouteDecision,
    RouterConfig,
    Semantic,
    decide,
    pick_adapter,
    row_key,
)
from service.schema import ChatCompletionRequest, Citation, ImprintInfo, Model
from service.semantic import SemanticMatcher, SentenceRelevance
from training.adapter import AdapterInfo
from training.chat import render_chat
from training.errors import InvalidInput, NotFound
from training.generation import GenerationRequest, GenerationResult
from training.prompting import ContextSource, cited_ids, focus_row, with_context

log = logging.getLogger("imprint.service")

MODEL_ROUTED = "imprint"
MODEL_ADAPTER = "imprint-adapter"
MODEL_RAG = "imprint-rag"
MODEL_BASE = "imprint-base"
# Below this, sampling is greedy (vLLM's threshold too): 1/temperature must stay finite in float32.
MIN_SAMPLING_TEMPERATURE = 1e-5


@dataclass
class Plan:
    model: str
    route: str
    reason: str
    adapter: AdapterInfo | None
    forced: bool
    question: str
    hits: list[Any] = field(default_factory=list)
    decision: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    retrieved_prompt_tokens: int = 0
    retrieval_ms: float = 0.0
    source_roots: list[str] = field(default_factory=list)  # the KB's folders: citations are relative
    retrieved: list[Any] = field(default_factory=list)  # every hit retrieval returned (checks and fallbacks)
    chat: list[dict[str, Any]] = field(default_factory=list)  # the conversation before any context is added
    asked_as: str | None = None  # the training question the adapter is asked instead (paraphrase mapping)

    @property
    def abstains(self) -> bool:
        return self.route == "abstain"

    def info(self, answer: str | None = None) -> ImprintInfo:
        cited = set(cited_ids(answer, len(self.hits))) if answer else set()
        return ImprintInfo(
            route=self.route,
            reason=self.reason,
            adapter=self.adapter.name if self.adapter else None,  # type: ignore[arg-type]
            forced=self.forced,
            citations=[citation(i, h, i in cited, self.source_roots) for i, h in enumerate(self.hits, 1)],
            decision=self.decision,
            retrieved_prompt_tokens=self.retrieved_prompt_tokens,
            retrieval_ms=round(self.retrieval_ms, 2),
        )


def citation(i: int, hit: Any, cited: bool, roots: Sequence[str] = ()) -> Citation:
    start, end = getattr(hit, "start_char", None), getattr(hit, "end_char", None)
    return Citation(
        id=i,
        doc_id=str(getattr(hit, "doc_id", "")),
        source=public_source(str(getattr(hit, "source", "")), roots),  # never the server's absolute path
        title=getattr(hit, "title", None),
        heading=getattr(hit, "heading", None),
        score=float(hit.score),
        dense_similarity=hit.dense_similarity,
        bm25_score=hit.bm25_score,
        span=(start, end) if start is not None and end is not None else None,
        modified=getattr(hit, "modified", None),
        cited=cited,
    )


def sources(hits: Sequence[Any], question: str = "") -> list[ContextSource]:
    """The context prompt's sources; a table row shows the columns the question names (``focus_row``)."""
    return [
        ContextSource(
            focus_row(h.text, question) if row_key(h) else h.text,
            getattr(h, "title", None),
            getattr(h, "heading", None),
        )
        for h in hits
    ]


def semantic_matcher(kb: Any, router: RouterConfig) -> SemanticMatcher | None:
    """Matching by meaning, when the router uses it: with the KB's embedder, or the default one when no KB
    is served — an adapter served alone still knows "你们家排行第一的孩子是谁?" is "老大是谁?" (by words
    alone, the family demo's routed model refused all ten of its paraphrases)."""
    if router.semantic_threshold is None and not router.semantic_calibration:
        return None
    embedder = getattr(kb, "embedder", None)
    if embedder is None:
        from indexing.embeddings import get_embedder

        embedder = get_embedder(None)
    return SemanticMatcher(embedder, fixed=router.semantic_threshold, calibrated=router.semantic_calibration)


def sentence_relevance(kb: Any, router: RouterConfig) -> SentenceRelevance | None:
    """The answer checks' test of a source sentence's relevance by meaning, with the KB's embedder."""
    embedder = getattr(kb, "embedder", None)
    return SentenceRelevance(embedder, router.dense_threshold) if embedder is not None else None


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        tokenizer: Any,
        adapters: Sequence[AdapterInfo],
        *,
        kb: Any = None,
        router: RouterConfig | None = None,
        retrieval_k: int = 5,
        default_max_tokens: int = 256,
        max_tokens_limit: int | None = None,
        base_chat_template: str | None = None,
    ) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.adapters = {a.name: a for a in adapters}
        # Fine-tuned model ids ("ft:BASE:imprint:SUFFIX:ID", with ':' that adapter names may not have) →
        # their adapter; forced by name only, never routed to (service.jobs serves them).
        self.aliases: dict[str, AdapterInfo] = {}
        # Adapter name → training questions whose memorised answer documents now contradict (the staleness
        # report, service.lifecycle.staleness): the router answers those from the documents.
        self.stale: dict[str, set[str]] = {}
        self.kb = kb
        self.router = router or RouterConfig()
        self.semantic = semantic_matcher(kb, self.router)
        self.related = sentence_relevance(kb, self.router)
        self.retrieval_k = retrieval_k
        self.default_max_tokens = default_max_tokens
        self.max_tokens_limit = max_tokens_limit
        template = base_chat_template or (adapters[0].chat_template if adapters else tokenizer.chat_template)
        if not isinstance(template, str) or not template:
            raise ValueError("no chat template for the base model: serve at least one adapter")
        self.base_chat_template = template

    # ── model names ──
    def models(self) -> list[Model]:
        first = next(iter(self.adapters), None)
        out = [
            Model(
                id=MODEL_ROUTED,
                description="routed (default): retrieval + adapter, cites sources, "
                "abstains when neither knows",
            )
        ]
        if first:
            out.append(Model(id=MODEL_ADAPTER, description=f"adapter {first!r} alone, no retrieval"))
        if self.kb is not None:
            out.append(Model(id=MODEL_RAG, description="base model + top retrieved chunks, no adapter"))
        out.append(Model(id=MODEL_BASE, description="base model alone, no adapter, no retrieval"))
        out += [
            Model(id=a.model_id, description=f"adapter {a.name} alone (trained {a.created_at})")
            for a in self.adapters.values()
        ]
        out += [Model(id=m, description=f"fine-tuned adapter {a.name}") for m, a in self.aliases.items()]
        return out

    def retrieval_kb(self, model: str) -> str | None:
        """The knowledge base a request for ``model`` reads (None: that model retrieves nothing)."""
        if self.kb is None or model not in (MODEL_ROUTED, MODEL_RAG):
            return None
        return str(getattr(self.kb, "name", "")) or None

    def check_limits(self, req: ChatCompletionRequest) -> None:
        """Refuse what the server will not do before any work: more new tokens than ``max_tokens_limit``."""
        limit = self.max_tokens_limit
        for param in ("max_completion_tokens", "max_tokens"):
            value = getattr(req, param)
            if limit is not None and value is not None and value > limit:
                raise InvalidInput(
                    f"{param}: {value} is more than this server allows per request ({limit}); ask for at "
                    f"most {limit} (the operator sets max_tokens_limit)",
                    param=param,
                    code="max_tokens_too_large",
                )

    def check_compatible(self, adapter: AdapterInfo) -> None:
        bases = {a.base_model for a in self.adapters.values()}
        if bases and adapter.base_model not in bases:
            raise InvalidInput(
                f"adapter {adapter.name!r} was trained on {adapter.base_model!r} but this "
                f"server runs {sorted(bases)[0]!r}; serve it from a separate instance",
                param="path",
            )

    def add_adapter(self, adapter: AdapterInfo) -> None:
        self.check_compatible(adapter)
        self.adapters[adapter.name] = adapter
        if self.semantic is not None:
            self.semantic.forget(adapter.name)  # a retrained version knows other questions

    def add_alias(self, model_id: str, adapter: AdapterInfo) -> None:
        """Serve ``adapter`` (already loaded in the engine) under ``model_id``."""
        self.aliases[model_id] = adapter

    def _adapter(self, name: str | None) -> AdapterInfo:
        if not self.adapters:
            raise NotFound(
                "no adapter is being served: start `imprint serve --adapter DIR`",
                param="model",
                code="model_not_found",
            )
        if name is None:
            return next(iter(self.adapters.values()))
        if name not in self.adapters:
            raise NotFound(
                f"adapter {name!r} is not served; served: {sorted(self.adapters)}",
                param="model",
                code="model_not_found",
            )
        return self.adapters[name]

    # ── planning ──
    async def retrieve(self, question: str) -> tuple[list[Any], float]:
        if self.kb is None:
            return [], 0.0
        t0 = time.perf_counter()
        try:
            hits = await asyncio.to_thread(self.kb.search, question, k=self.retrieval_k)
        except Exception as exc:  # a broken index must not take answers from the adapter down
            log.exception("retrieval failed; routing without documents")
            raise RetrievalFailed(str(exc)) from exc
        return list(hits), (time.perf_counter() - t0) * 1000

    async def plan(self, req: ChatCompletionRequest) -> Plan:
        self.check_limits(req)
        name = req.model
        question = req.question()
        if name == MODEL_BASE:
            plan = Plan(name, "base", "forced by model name", None, True, question)
        elif name == MODEL_ADAPTER or name.startswith(MODEL_ADAPTER + ":"):
            adapter = self._adapter(name.split(":", 1)[1] if ":" in name else None)
            plan = Plan(name, "adapter", "forced by model name", adapter, True, question)
        elif name in self.aliases:
            plan = Plan(name, "adapter", "fine-tuned model", self.aliases[name], True, question)
        elif name == MODEL_RAG:
            if self.kb is None:
                raise InvalidInput(
                    "model 'imprint-rag' needs a knowledge base: start `imprint serve --kb NAME`",
                    param="model",
                    code="model_not_found",
                )
            hits, ms = await self._retrieve_or_none(question)
            plan = Plan(
                name,
                "rag",
                "forced by model name",
                None,
                True,
                question,
                hits[: self.router.max_context_hits],
                retrieval_ms=ms,
            )
        elif name == MODEL_ROUTED:
            plan = await self._routed(question)
        else:
            raise NotFound(
                f"model {name!r} does not exist; use one of {[m.id for m in self.models()]} (GET /v1/models)",
                param="model",
                code="model_not_found",
            )
        plan.source_roots = kb_roots(self.kb)
        if not plan.abstains:
            # "developer" is OpenAI's newer name for "system"; chat templates only know the latter.
            roles = [("system" if m.role == "developer" else m.role) for m in req.messages]
            messages = [{"role": r, "content": m.text()} for r, m in zip(roles, req.messages, strict=True)]
            plan.chat = instructions_as_user(messages)
            self._fit(plan, list(plan.hits))
        log.info(
            "route=%s model=%s adapter=%s hits=%d reason=%s",
            plan.route,
            name,
            plan.adapter.name if plan.adapter else None,
            len(plan.hits),
            plan.reason,
        )
        return plan

    async def _retrieve_or_none(self, question: str) -> tuple[list[Any], float]:
        try:
            return await self.retrieve(question)
        except RetrievalFailed:
            return [], 0.0

    async def _routed(self, question: str) -> Plan:
        served = list(self.adapters.values())
        try:
            hits, ms = await self.retrieve(question)
            failed = None
        except RetrievalFailed as exc:
            hits, ms, failed = [], 0.0, str(exc)
        # Several adapters: route to the one whose training questions match best (the first by default).
        candidates = [AdapterKnowledge(a.name, a.knowledge, a.created_at, a.missed) for a in served]
        semantic = await self._semantic(question, served)
        knowledge = pick_adapter(question, candidates, self.router, semantic)
        sem = semantic[candidates.index(knowledge)] if semantic and knowledge else None
        adapter = self.adapters[knowledge.name] if knowledge else None
        d: RouteDecision = decide(question, hits, knowledge, self.router, sem)
        if adapter is not None and d.route == "adapter" and hits and self.is_stale(adapter, d.details):
            d.route, d.reason = (
                "adapter+context",
                "stale: documents changed the adapter's answer since training",
            )
            d.hits = hits[: self.router.max_context_hits]
        if failed:
            d.details["retrieval_error"] = failed
        if adapter is not None and self.semantic is not None:
            d.details["semantic_calibration"] = self.semantic.report(adapter)
        use_adapter = adapter if d.route in ("adapter", "adapter+context") else None
        asked_as = None
        if d.route == "adapter" and self.router.paraphrase_wording == "trained":
            trained = d.details.get("knowledge_question")
            asked_as = trained if trained and trained != question else None
            d.details["asked_as"] = asked_as
        return Plan(
            MODEL_ROUTED,
            d.route,
            d.reason,
            use_adapter,
            False,
            question,
            list(d.hits),
            d.details,
            retrieval_ms=ms,
            retrieved=list(hits),
            asked_as=asked_as,
        )

    def is_stale(self, adapter: AdapterInfo, details: dict[str, Any]) -> bool:
        stale = self.stale.get(adapter.name)
        return bool(stale) and details.get("knowledge_question") in stale

    def ask_as(self, plan: Plan, training_question: str | None) -> None:
        """Re-render ``plan`` with the adapter asked ``training_question`` (None: the user's own words)."""
        plan.asked_as = training_question
        self._render(plan, plan.chat)

    def use_context(self, plan: Plan, hits: Sequence[Any], reason: str) -> None:
        """Re-route ``plan`` to answer from ``hits`` (its adapter reads them; the base model without one)."""
        plan.route = "adapter+context" if plan.adapter else "context"
        plan.reason = reason
        plan.asked_as = None
        self._fit(plan, list(hits[: self.router.max_context_hits]))

    def _fit(self, plan: Plan, hits: list[Any]) -> None:
        """Render ``plan`` with as many of the best ``hits`` as the model's context holds: the documents
        retrieval found must not fail a short question (a hit too long for the context is dropped)."""
        for n in range(len(hits), 0, -1):
            plan.hits = hits[:n]
            try:
                self._render(plan, plan.chat)
                return
            except InvalidInput:
                if n == 1:
                    raise
        plan.hits = []
        self._render(plan, plan.chat)

    async def _semantic(self, question: str, served: list[AdapterInfo]) -> list[Semantic] | None:
        """Best cosine of the question to each adapter's training questions (None when disabled)."""
        if self.semantic is None or not served:
            return None
        return await asyncio.to_thread(self.semantic.match, question, served)

    def _render(self, plan: Plan, messages: list[dict[str, Any]]) -> None:
        template = plan.adapter.chat_template if plan.adapter else self.base_chat_template
        if plan.asked_as:  # the adapter is asked in the wording it was trained on (its last user turn)
            last = max(i for i, m in enumerate(messages) if m["role"] == "user")
            messages = [*messages[:last], {**messages[last], "content": plan.asked_as}, *messages[last + 1 :]]
        if plan.adapter and plan.adapter.system_prompt and not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": plan.adapter.system_prompt}, *messages]
        bos = self.tokenizer.bos_token or ""
        try:
            plain = render_chat(messages, template, add_generation_prompt=True, bos_token=bos)
            if plan.hits:
                messages = with_context(messages, sources(plan.hits, plan.question))
                prompt = render_chat(messages, template, add_generation_prompt=True, bos_token=bos)
            else:
                prompt = plain
        except Exception as exc:  # a template error is the request's fault (odd roles/order), not a 500
            raise InvalidInput(
                f"messages cannot be rendered with the model's chat template: {exc}", param="messages"
            ) from exc
        plan.messages = messages
        plan.prompt_ids = self.encode(prompt)
        if plan.hits:
            plan.retrieved_prompt_tokens = len(plan.prompt_ids) - len(self.encode(plain))
        limit = getattr(self.engine, "max_context", None)
        if limit and len(plan.prompt_ids) >= limit:
            raise InvalidInput(
                f"the prompt is {len(plan.prompt_ids)} tokens but the model's context is {limit}; "
                "send fewer or shorter messages",
                param="messages",
                code="context_length_exceeded",
            )

    def encode(self, text: str) -> list[int]:
        # The template already wrote BOS as text; adding special tokens again would double it.
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generation_request(
        self, plan: Plan, req: ChatCompletionRequest, json_schema: str | None = None
    ) -> GenerationRequest:
        """The engine request: the rendered prompt and the OpenAI sampling parameters (``top_p: 0`` keeps
        only the likeliest token, i.e. greedy); ``json_schema`` constrains the output (``service.params``)."""
        greedy = req.top_p == 0
        return GenerationRequest(
            prompt_ids=plan.prompt_ids,
            adapter=(plan.adapter.served_as or plan.adapter.name) if plan.adapter else None,
            max_tokens=self._room(plan, req.token_limit(self.default_max_tokens)),
            temperature=0.0 if greedy else sampling_temperature(req.temperature),
            top_p=1.0 if greedy or req.top_p is None else req.top_p,
            stop=tuple(req.stop_list()),
            seed=req.seed,
            json_schema=json_schema,
            logprobs=(req.top_logprobs or 0) if req.logprobs else None,
            frequency_penalty=req.frequency_penalty or 0.0,
            presence_penalty=req.presence_penalty or 0.0,
            logit_bias={int(t): b for t, b in req.logit_bias.items()} if req.logit_bias else None,
        )

    def _room(self, plan: Plan, wanted: int) -> int:
        """Never ask for more new tokens than the context has room for (finish_reason becomes "length")."""
        limit = getattr(self.engine, "max_context", None)
        return max(1, min(wanted, limit - len(plan.prompt_ids))) if limit else wanted

    async def complete(self, req: ChatCompletionRequest) -> tuple[Plan, GenerationResult]:
        """Plan + generate (or abstain) — the non-streaming path, also used by the eval modes; the request's
        parameters are judged and its ``response_format`` constrains the output as on the HTTP route."""
        from service.params import check_request

        spec = check_request(req, vocab_size=len(self.tokenizer))
        plan = await self.plan(req)
        return plan, await answer(self, plan, req, spec.json_schema)


def sampling_temperature(value: float | None) -> float:
    """OpenAI accepts any temperature in 0..2; one too small to divide by means greedy (0)."""
    return value if value is not None and value >= MIN_SAMPLING_TEMPERATURE else 0.0


class RetrievalFailed(Exception):
    pass


def instructions_as_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation of system messages only becomes one user turn: some templates (Gemma's) show system
    text only inside the next user turn, so without one the model would never see the instructions."""
    if any(m["role"] == "user" for m in messages):
        return messages
    text = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return [{"role": "user", "content": text}, *(m for m in messages if m["role"] != "system")]
