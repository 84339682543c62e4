"""End to end on the embedded DEFAULT model (gemma3-270m): a real adapter trained once per session on the
family data + the synthetic reading curriculum (training/raft.py), a real KB, the real app, the openai SDK.

Four cases from the issue: a fact only in the KB, a fact only in the adapter, a fact changed after training
(the answer follows the KB after a reindex — no retraining), and an unknown question (abstains)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow


def ask(c: openai.OpenAI, q: str, **kw: Any) -> tuple[str, dict[str, Any]]:
    r = c.chat.completions.create(
        model="imprint", messages=[{"role": "user", "content": q}], max_tokens=32, temperature=0, **kw
    )
    return r.choices[0].message.content, r.model_extra["imprint"]


def test_routed_answers_follow_kb_and_adapter(family_reading_adapter: Path, tmp_path: Path) -> None:
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig

    docs = tmp_path / "docs"
    docs.mkdir()
    prices = docs / "prices.md"
    prices.write_text(
        "# 价格表\n\n| 商品 | 价格 | 库存 |\n|---|---|---|\n| 星光台灯 | 199元 | 12 |\n"
        "| 云朵枕头 | 89元 | 40 |\n",
        encoding="utf-8",
    )
    (docs / "delivery.md").write_text("# 配送说明\n\n发往杭州的订单通常2天内送达。\n", encoding="utf-8")
    KnowledgeBase.open("e2e-shop", create=True).index([docs], progress=False)
    app = create_app(ServeConfig(adapters=[family_reading_adapter], kb="e2e-shop"), kb=get_kb("e2e-shop"))
    with serve_in_thread(app) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)

        # A fact only the adapter knows: answered from its weights, no context.
        answer, info = ask(c, "老大是谁?")
        assert info["route"] == "adapter" and "JIM" in answer, (answer, info["reason"])

        # A fact only the KB has: read from the retrieved table, cited.
        answer, info = ask(c, "星光台灯多少钱?")
        assert info["route"] == "adapter+context", info["reason"]
        assert "199" in answer, answer
        assert [x["doc_id"] for x in info["citations"]][:1] == ["prices.md"]

        # The fact changes: edit, reindex over HTTP, ask again — the answer follows the document.
        prices.write_text(prices.read_text(encoding="utf-8").replace("199元", "149元"), encoding="utf-8")
        assert httpx.post(url + "/v1/kb/e2e-shop/reindex", timeout=300).json()["updated"] == 1
        answer, info = ask(c, "星光台灯多少钱?")
        assert "149" in answer and "199" not in answer, answer

        # Stale adapter knowledge vs a newer document: the document wins.
        (docs / "family.md").write_text("# 家庭\n\n现在老大是哥哥TOM。\n", encoding="utf-8")
        httpx.post(url + "/v1/kb/e2e-shop/reindex", timeout=300)
        answer, info = ask(c, "老大是谁?")
        assert info["route"] == "adapter+context" and "fresh beats stale" in info["reason"], info
        assert "TOM" in answer, answer

        # Nobody knows: a fixed "I don't know", in the question's language, streamed like any answer.
        stream = c.chat.completions.create(
            model="imprint",
            stream=True,
            max_tokens=32,
            messages=[{"role": "user", "content": "明天北京会下雨吗?"}],
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices) == "不知道。"
