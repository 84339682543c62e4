"""The staleness report on the embedded default model (gemma3-270m): the family adapter (with the reading
curriculum, so it can answer from a document), then documents
modified after it was trained — one says the elder brother is now 11 (a changed fact), one only mentions
the cat (an unchanged one). Exactly "哥哥几岁?" is reported stale, by ``imprint stale --adapter DIR`` and by
``GET /v1/adapters/{name}/staleness``; afterwards the routed answer follows the document, and ``/metrics``
exports the stale count."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from typer.testing import CliRunner

from service.cli import app as cli_app

pytestmark = pytest.mark.slow


def test_a_changed_fact_is_stale_and_the_router_follows_the_document(
    family_reading_adapter: Path, tmp_path: Path
) -> None:
    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from training.adapter import read_adapter

    family_adapter = family_reading_adapter  # it reads documents: the router can follow one

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "brother.md").write_text("# 哥哥\n\n哥哥JIM今年11岁了。\n", encoding="utf-8")
    (docs / "cat.md").write_text("# 小猫\n\n我们家的猫叫kitty,它是白色的。\n", encoding="utf-8")
    KnowledgeBase.open("stale-family", create=True).index([docs], progress=False)
    knowledge = read_adapter(family_adapter).knowledge
    assert "哥哥几岁?" in knowledge

    r = CliRunner().invoke(
        cli_app, ["stale", "--adapter", str(family_adapter), "--kb", "stale-family", "--json"]
    )
    assert r.exit_code == 1, r.output  # 1: stale facts found
    report = json.loads(r.output)
    assert [s["question"] for s in report["stale"]] == ["哥哥几岁?"], report
    stale = report["stale"][0]
    assert "11" in stale["document_answer"] and "10" in stale["trained_answer"], stale
    assert stale["source"]["doc_id"] == "brother.md" and stale["source"]["modified"]
    assert report["checked"] == len(knowledge) == report["consistent"] + report["unclear"] + 1

    settings = ServeConfig(adapters=[family_adapter], kb="stale-family")
    with serve_in_thread(create_app(settings, kb=get_kb("stale-family"))) as url:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600)
        name = read_adapter(family_adapter).name
        served = httpx.get(f"{url}/v1/adapters/{name}/staleness", params={"kb": "stale-family"}, timeout=600)
        assert served.status_code == 200, served.text
        assert [s["question"] for s in served.json()["stale"]] == ["哥哥几岁?"]
        assert f'imprint_adapter_stale_facts{{adapter="{name}"}} 1.0' in httpx.get(f"{url}/metrics").text

        r2 = c.chat.completions.create(
            model="imprint", messages=[{"role": "user", "content": "哥哥几岁?"}], max_tokens=32, temperature=0
        )
        info = r2.model_extra["imprint"]
        assert "11" in (r2.choices[0].message.content or ""), (r2.choices[0].message.content, info)
        assert info["route"] in ("context", "adapter+context"), info

        missing = httpx.get(f"{url}/v1/adapters/nobody/staleness", params={"kb": "stale-family"})
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "name"
        no_kb = httpx.get(f"{url}/v1/adapters/{name}/staleness", params={"kb": "elsewhere"})
        assert no_kb.status_code == 404 and no_kb.json()["error"]["param"] == "kb"
