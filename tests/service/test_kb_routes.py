"""The knowledge-base routes on the real app: re-index sees edits without a restart, search cites, errors are
OpenAI-shaped with the KB's codes (a KB built by the real `imprint index` command)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from tests.indexing.conftest import FAST_EMBEDDER, write_corpus


def test_http_reindex_sees_edits_and_search_cites(
    serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs, home = write_corpus(tmp_path / "docs"), tmp_path / "home"
    monkeypatch.setenv("IMPRINT_HOME", str(home))
    runner = CliRunner()
    result = runner.invoke(cli, ["index", str(docs), "--kb", "web", "--embedder", FAST_EMBEDDER])
    assert result.exit_code == 0, result.output
    from indexing.registry import get_kb

    with serve(kb=get_kb("web", home=home), kb_name="web", home=home) as url:
        client = httpx.Client(base_url=url, timeout=120)
        r = client.post("/v1/kb/web/reindex")
        assert r.status_code == 200
        counts = {k: r.json()[k] for k in ("added", "updated", "deleted", "unchanged")}
        assert counts == {"added": 0, "updated": 0, "deleted": 0, "unchanged": 6}

        (docs / "products/prices.md").write_text(
            "# 价格表\n\n| 商品 | 价格 |\n|---|---|\n| 云朵枕头 | 59元 |\n", encoding="utf-8"
        )
        r = client.post("/v1/kb/web/reindex")
        assert r.json()["updated"] == 1 and r.json()["embedded_chunks"] == 1

        r = client.get("/v1/kb/web/search", params={"q": "云朵枕头价格", "k": 2})
        assert r.status_code == 200
        top = r.json()["data"][0]
        assert top["doc_id"] == "products/prices.md" and "59元" in top["text"]
        assert top["heading"] == "价格表" and top["end_char"] > top["start_char"]
        assert top["modified"].endswith("Z")

        missing = client.get("/v1/kb/nope/search", params={"q": "x"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "kb_not_found"
        assert set(missing.json()["error"]) == {"message", "type", "param", "code"}
        assert client.get("/v1/kb/web/search").json()["error"]["param"] == "q"
        assert client.get("/v1/kb/web/search", params={"q": "x", "mode": "magic"}).status_code == 400
