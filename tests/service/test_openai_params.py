"""No silently ignored parameter: each OpenAI chat parameter that used to be dropped with a 200 is now either
honoured (its effect is visible in the output) or refused with a 400 whose ``param`` names it — through the
real app on uvicorn, the tiny embedded engine and the openai SDK. Plus the other endpoints' shapes, each
checked strictly against the openai package's own types."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import xgrammar as xgr
from openai.types import CreateEmbeddingResponse, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

HI = [{"role": "user", "content": "Who is the eldest?"}]


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


def chat(url: str, **body: Any) -> dict[str, Any]:
    body = {"model": "imprint-base", "messages": HI, "max_tokens": 8, **body}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return ChatCompletion.model_validate(r.json(), strict=True).model_dump() | {"raw": r.json()}


def refused(url: str, **body: Any) -> dict[str, Any]:
    body = {"model": "imprint-base", "messages": HI, "max_tokens": 8, **body}
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=120)
    assert r.status_code == 400, r.text
    return r.json()["error"]


def text(r: dict[str, Any]) -> str:
    return r["choices"][0]["message"]["content"]


REFUSALS = [
    # (extra body, param) — each says what to do instead
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {"type": "image_url", "image_url": {"url": "data:,"}},
                    ],
                }
            ]
        },
        "messages[0].content[1]",
    ),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
                }
            ]
        },
        "messages[0].content[0]",
    ),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto"}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"messages": [*HI, {"role": "tool", "content": "42", "tool_call_id": "c1"}]}, "messages[1].role"),
    ({"n": 2}, "n"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logit_bias": {"999999": 5}}, "logit_bias"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
    ({"modalities": ["text", "audio"]}, "modalities"),
    ({"reasoning_effort": "low"}, "reasoning_effort"),
    ({"prediction": {"type": "content", "content": "x"}}, "prediction"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"functions": [{"name": "f"}]}, "functions"),
    ({"store": True}, "store"),
    ({"imprint": "not an object"}, "imprint"),
    ({"frobnicate": 1}, "frobnicate"),
]


def test_each_unsupported_parameter_is_refused_by_name(serve):
    with serve() as url:
        errors = [(refused(url, **body), param) for body, param in REFUSALS]
    for err, param in errors:
        assert err["param"] == param, (param, err)
        assert err["type"] == "invalid_request_error" and len(err["message"]) > 20


def test_accepted_metadata_and_vendor_extras_through_the_sdk(serve):
    """What SDKs and frameworks send besides the parameters: accepted, answer unchanged."""
    with serve() as url:
        plain = client(url).chat.completions.create(model="imprint-base", messages=HI, max_tokens=8)
        extras = client(url).chat.completions.create(
            model="imprint-base",
            messages=HI,
            max_tokens=8,
            user="u1",
            metadata={"k": "v"},
            store=False,
            parallel_tool_calls=False,
            service_tier="auto",
            modalities=["text"],
            extra_body={"imprint": {}},
        )
    assert extras.choices[0].message.content == plain.choices[0].message.content


def test_logprobs_plain_and_streamed_in_openai_shape(serve, tiny_model):
    tok = tiny_model[1]
    with serve() as url:
        plain = chat(url, logprobs=True, top_logprobs=3)
        no_top = chat(url, logprobs=True)
        chunks = list(
            client(url).chat.completions.create(
                model="imprint-base", messages=HI, max_tokens=8, logprobs=True, top_logprobs=3, stream=True
            )
        )
    content = plain["choices"][0]["logprobs"]["content"]
    assert len(content) == plain["usage"]["completion_tokens"] - (
        plain["choices"][0]["finish_reason"] == "stop"
    )
    assert b"".join(bytes(e["bytes"]) for e in content).decode("utf-8", "replace") == tok.decode(
        tok(text(plain), add_special_tokens=False)["input_ids"]
    )
    for e in content:
        assert len(e["top_logprobs"]) == 3 and e["logprob"] <= 0
        assert e["top_logprobs"][0]["logprob"] >= e["logprob"]  # greedy: the chosen token is the likeliest
        assert e["top_logprobs"][0]["token"] == e["token"]
    assert all(e["top_logprobs"] == [] for e in no_top["choices"][0]["logprobs"]["content"])
    streamed = [
        e for ch in chunks if ch.choices and ch.choices[0].logprobs for e in ch.choices[0].logprobs.content
    ]
    assert [(e.token, round(e.logprob, 4)) for e in streamed] == [
        (e["token"], round(e["logprob"], 4)) for e in content
    ]


def test_penalties_and_logit_bias_change_the_greedy_answer(serve, tiny_model):
    tok = tiny_model[1]
    with serve() as url:
        base = chat(url, max_tokens=24, logprobs=True)
        first = base["choices"][0]["logprobs"]["content"][0]
        first_id = xgr.TokenizerInfo.from_huggingface(tok).decoded_vocab.index(bytes(first["bytes"]))
        banned = chat(url, max_tokens=24, logprobs=True, logit_bias={str(first_id): -100})
        penalised = chat(url, max_tokens=24, frequency_penalty=2.0)
        present = chat(url, max_tokens=24, presence_penalty=2.0)
        zero = chat(url, max_tokens=24, frequency_penalty=0.0, presence_penalty=0.0, logit_bias={})
    assert banned["choices"][0]["logprobs"]["content"][0]["token"] != first["token"]
    assert text(penalised) != text(base) and text(present) != text(base)
    assert text(zero) == text(base)


def test_top_p_zero_is_greedy_and_system_only_conversations_are_answered(serve):
    with serve() as url:
        greedy = chat(url, temperature=0)
        top_p_zero = chat(url, temperature=1.5, top_p=0, seed=3)
        system_only = chat(url, messages=[{"role": "system", "content": "Reply briefly with OK"}])
        developer_only = chat(url, messages=[{"role": "developer", "content": "Reply briefly with OK"}])
        user_only = chat(url, messages=[{"role": "user", "content": "Reply briefly with OK"}])
    assert text(top_p_zero) == text(greedy)
    # Instructions alone are shown to the model as the user turn (Gemma's template shows system text only
    # inside one), so the model sees exactly what a user message would show it.
    for r in (system_only, developer_only):
        assert text(r) == text(user_only) and r["usage"] == user_only["usage"]


def test_models_retrieve_fingerprint_and_cors(serve):
    with serve(cors_origins=["http://localhost:3000"]) as url:
        c = client(url)
        listed = [m.id for m in c.models.list().data]
        got = [c.models.retrieve(m) for m in listed]
        with pytest.raises(openai.NotFoundError) as err:
            c.models.retrieve("gpt-4")
        alpha = chat(url, model="imprint-adapter:alpha")
        beta = chat(url, model="imprint-adapter:beta")
        preflight = httpx.options(
            url + "/v1/chat/completions",
            headers={
                "Origin": "http://localhost:3000",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        stranger = httpx.options(
            url + "/v1/models",
            headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
        )
        raw = httpx.get(url + "/v1/models/imprint-adapter:alpha").json()
        raw_list = httpx.get(url + "/v1/models").json()
    assert [m.id for m in got] == listed
    Model.model_validate(raw, strict=True)
    assert raw_list["object"] == "list"
    assert [Model.model_validate(m, strict=True).id for m in raw_list["data"]] == listed
    assert err.value.body["param"] == "model" and err.value.body["code"] == "model_not_found"
    assert alpha["system_fingerprint"] != beta["system_fingerprint"]  # the answering adapter is in it
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert stranger.status_code == 400 and "access-control-allow-origin" not in stranger.headers


def test_no_cors_by_default(serve):
    with serve() as url:
        r = httpx.options(
            url + "/v1/chat/completions",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
        )
    assert r.status_code == 405 and "access-control-allow-origin" not in r.headers


def test_embeddings_float_and_base64_with_the_kb_embedder(serve):
    from indexing.embeddings import get_embedder

    with serve() as url:
        c = client(url)
        floats = c.embeddings.create(model="imprint-embed", input=["星光台灯多少钱?", "hello"])
        raw = httpx.post(
            url + "/v1/embeddings",
            json={"model": "imprint-embed", "input": "hello", "encoding_format": "base64"},
            timeout=60,
        ).json()
        bad = httpx.post(
            url + "/v1/embeddings", json={"model": "imprint-embed", "input": [[1, 2]]}, timeout=60
        )
        dims = httpx.post(
            url + "/v1/embeddings", json={"model": "imprint-embed", "input": "x", "dimensions": 3}, timeout=60
        )
    CreateEmbeddingResponse.model_validate(floats.model_dump(), strict=True)
    expected = get_embedder().encode(["星光台灯多少钱?", "hello"])
    assert np.allclose([d.embedding for d in floats.data], expected, atol=1e-5)
    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(decoded, expected[1], atol=1e-6)
    assert floats.usage.prompt_tokens > 0
    assert bad.json()["error"]["param"] == "input" and dims.json()["error"]["param"] == "dimensions"


def test_responses_api_plain_streamed_and_as_chat(serve):
    with serve() as url:
        c = client(url)
        chat_answer = c.chat.completions.create(model="imprint-base", messages=HI, max_tokens=8)
        plain = c.responses.create(model="imprint-base", input="Who is the eldest?", max_output_tokens=8)
        raw = httpx.post(
            url + "/v1/responses",
            json={"model": "imprint-base", "input": "Who is the eldest?", "max_output_tokens": 8},
            timeout=60,
        ).json()
        as_messages = c.responses.create(
            model="imprint-base",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "Who is the eldest?"}]}],
            max_output_tokens=8,
        )
        events = list(
            c.responses.create(
                model="imprint-base", input="Who is the eldest?", max_output_tokens=8, stream=True
            )
        )
        unknown = c.responses.create(
            model="imprint", input="What is the capital of Peru?", instructions="Be brief."
        )
        with pytest.raises(openai.BadRequestError) as err:
            c.responses.create(model="imprint-base", input="hi", previous_response_id="resp_1")
    Response.model_validate(raw, strict=True)
    assert plain.output_text == as_messages.output_text == chat_answer.choices[0].message.content
    assert plain.status == ("incomplete" if chat_answer.choices[0].finish_reason == "length" else "completed")
    assert plain.usage.output_tokens == chat_answer.usage.completion_tokens
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == plain.output_text
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert unknown.output_text == "I don't know." and unknown.model_extra["imprint"]["route"] == "abstain"
    assert err.value.body["param"] == "previous_response_id"


def test_chunks_and_response_events_match_openai_schemas(serve):
    with serve() as url:
        lines = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "imprint-base", "messages": HI, "max_tokens": 4, "stream": True, "logprobs": True},
            timeout=60,
        ).text.split("\n\n")
        err = httpx.post(url + "/v1/chat/completions", json={"model": "imprint-base"}, timeout=60).json()
        events = httpx.post(
            url + "/v1/responses",
            json={"model": "imprint", "input": "What is the capital of Peru?", "stream": True},
            timeout=60,
        ).text.split("\n\n")
    for e in filter(None, events):
        kind, data = e.split("\n", 1)
        event = TypeAdapter(ResponseStreamEvent).validate_python(
            json.loads(data.removeprefix("data: ")), strict=True
        )
        assert kind == f"event: {event.type}"
    chunks = [json.loads(e[6:]) for e in lines if e.startswith("data: {")]
    assert chunks
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk, strict=True)
        assert isinstance(chunk["system_fingerprint"], str)
    assert set(err) == {"error"} and set(err["error"]) == {"message", "type", "param", "code"}


def test_routed_model_answers_instructions_and_still_abstains_on_unknown_facts(serve):
    """Every client's smoke test ("Reply briefly with OK") used to get "I don't know" from the router."""
    with serve() as url:
        answers = {
            q: chat(url, model="imprint", messages=[{"role": "user", "content": q}])["raw"]
            for q in ("Reply briefly with OK", "翻译成英文：老大是谁?", "What is the capital of Peru?")
        }
    for q in ("Reply briefly with OK", "翻译成英文：老大是谁?"):
        info = answers[q]["imprint"]
        assert info["route"] == "adapter" and "needs no fact" in info["reason"] and not info["citations"]
        assert answers[q]["usage"]["completion_tokens"] > 0
    unknown = answers["What is the capital of Peru?"]
    assert unknown["imprint"]["route"] == "abstain" and text(unknown) == "I don't know."
