"""The OpenAI wire schema Imprint speaks, in one module (pydantic v2).

Requests accept every field OpenAI documents (in OpenAI's order) plus unknown ones, which are kept and
logged by
the app rather than rejected, so any OpenAI SDK version works unchanged. Responses are exactly OpenAI's shape
plus ONE documented extra: the ``imprint`` object (route, reason, citations, decision details, token costs).

    from service.schema import ChatCompletionRequest
    ChatCompletionRequest.model_validate({"model": "imprint", "messages": [{"role": "user", "content":
    "hi"}]})
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
# OpenAI's seed is an int64; longer stop strings make transformers' stop-string tables cost seconds each.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_STOP_CHARS = 64
FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


class ContentPart(BaseModel):
    """One part of a multi-part message; only text parts are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's text: multi-part content is joined, non-text parts are ignored."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions body. Unknown fields are accepted (see ``unknown_fields``)."""

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str = "imprint"
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
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
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    user: str | None = None

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError("only n=1 is supported; send several requests for several answers")
        return value

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences are allowed")
        stops = [value] if isinstance(value, str) else value or []
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"each stop sequence may be at most {MAX_STOP_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _has_user_text(self) -> ChatCompletionRequest:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("messages must contain at least one message with role 'user'")
        return self

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
        """The last user message: what retrieval and routing look at."""
        return next(m.text() for m in reversed(self.messages) if m.role == "user")


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

    route: Literal["adapter", "adapter+context", "context", "abstain", "base", "rag"]
    reason: str
    adapter: str | None = None
    forced: bool = False
    citations: list[Citation] = Field(default_factory=list)
    decision: dict[str, Any] = Field(default_factory=dict)
    retrieved_prompt_tokens: int = 0
    retrieval_ms: float = 0.0


class ChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None


class Choice(BaseModel):
    index: int = 0
    message: ChoiceMessage
    logprobs: Any = None
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
    system_fingerprint: str | None = None
    imprint: ImprintInfo | None = None


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    logprobs: Any = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
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


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail
