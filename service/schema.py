"""The OpenAI wire schema Imprint speaks, in one module (pydantic v2).

Requests accept every field OpenAI documents (in OpenAI's order); what each one does here — honoured, accepted
as metadata, or refused with a 400 naming it — is decided in ONE place, ``service.params``, which also
refuses fields nobody documents (as OpenAI does: "Unrecognized request argument"). Responses are exactly
OpenAI's shape plus ONE documented extra: the ``imprint`` object (route, reason, citations, decision details,
token costs).

    from service.schema import ChatCompletionRequest
    ChatCompletionRequest.model_validate({"model": "imprint", "messages": [{"role": "user", "content":
    "hi"}]})
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
# OpenAI's seed is an int64; longer stop strings make transformers' stop-string tables cost seconds each.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STOP_CHARS = 64
FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


TEXT_PARTS = ("text", "refusal")  # content part types that are text (the rest are refused: service.params)


class ContentPart(BaseModel):
    """One part of a multi-part message; text parts are understood, others refused (``service.params``)."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None
    refusal: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text: multi-part text content joined (``service.params`` refused the rest)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or part.refusal or "" for part in self.content if part.type in TEXT_PARTS)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions body. Unknown fields are kept in ``unknown_fields`` for ``service.params``
    to judge."""

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str = "imprint"
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = 1
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    response_format: dict[str, Any] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)  # 0: only the likeliest token = greedy
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        stops = [value] if isinstance(value, str) else value or []
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"each stop sequence may be at most {MAX_STOP_CHARS} characters")
        return value

    @field_validator("messages")
    @classmethod
    def _has_instructions(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role in ("user", "system", "developer") for m in value):
            raise ValueError("must contain a 'user', 'system' or 'developer' message")
        return value

    @property
    def unknown_fields(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def token_limit(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default

    def question(self) -> str:
        """The last user message (else the last system/developer one: a conversation of instructions only is
        answered too): what retrieval and routing look at."""
        for roles in (("user",), ("system", "developer")):
            found = next((m.text() for m in reversed(self.messages) if m.role in roles), None)
            if found is not None:
                return found
        return ""


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )


# ── Imprint extras (the one documented extension of OpenAI's response) ──────────────────────────────────────


class Citation(BaseModel):
    """A retrieved source shown to the model as ``[id]``; ``cited`` says whether the answer used that
    marker."""

    id: int
    doc_id: str
    source: str
    title: str | None = None
    heading: str | None = None
    score: float
    dense_similarity: float | None = None
    bm25_score: float | None = None
    span: tuple[int, int] | None = None
    modified: str | None = None
    cited: bool = False


class ImprintInfo(BaseModel):
    """``imprint`` field on responses: which route answered, why, from which sources, at what token cost."""

    route: Literal["adapter", "adapter+context", "context", "extract", "trained", "abstain", "base", "rag"]
    reason: str
    adapter: str | None = None
    forced: bool = False
    citations: list[Citation] = Field(default_factory=list)
    decision: dict[str, Any] = Field(default_factory=dict)
    retrieved_prompt_tokens: int = 0
    retrieval_ms: float = 0.0


class TopLogprob(BaseModel):
    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprobOut(TopLogprob):
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    content: list[TokenLogprobOut] | None = None
    refusal: list[TokenLogprobOut] | None = None


class FunctionCall(BaseModel):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(BaseModel):
    id: str = Field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")
    type: Literal["function"] = "function"
    function: FunctionCall


class ChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = Field(default=None, exclude_if=lambda v: v is None)  # array or absent


class Choice(BaseModel):
    index: int = 0
    message: ChoiceMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=new_completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str
    imprint: ImprintInfo | None = None


class ChunkToolCall(BaseModel):
    index: int = 0
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ChunkToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str
    imprint: ImprintInfo | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "imprint"
    description: str | None = None  # Imprint extra: what this name means (routed, forced route, adapter)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class EmbeddingRequest(BaseModel):
    """POST /v1/embeddings body (OpenAI's shape)."""

    model_config = ConfigDict(extra="allow")
    input: str | list[str] | list[int] | list[list[int]]
    model: str = "imprint-embed"
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # base64 of little-endian float32 when encoding_format="base64"


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
