"""The endpoints the web console adds, over real HTTP on the real app: ``POST /v1/data/check`` (a file as
the model sees it, tokenized by tiny-phi3's real tokenizer), ``GET /v1/kb`` and ``/v1/kb/{name}/documents``
(a KB built by the real ``imprint index``), and the page + its assets served offline (no external URL)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from service.cli import app as cli
from tests.conftest import FAMILY_TRAIN
from tests.indexing.conftest import FAST_EMBEDDER, write_corpus

KEYS = {"api_keys": ["k-full"], "scoped_keys": [{"key": "k-chat", "kbs": ["other"]}]}


def auth(key: str = "k-full") -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def check(client: httpx.Client, data: bytes, **form: Any) -> httpx.Response:
    return client.post(
        "/v1/data/check",
        files={"file": ("train.jsonl", data, "application/jsonl")},
        data={"model": "tiny-phi3", **form},
        headers=auth(),
    )


def test_data_check_previews_as_the_model_sees_it(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3, **KEYS) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = check(c, FAMILY_TRAIN.read_bytes(), preview="2")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"] and body["model"] == "tiny-phi3" and body["filename"] == "train.jsonl"
        assert [e["line"] for e in body["preview"]] == [2, 3]
        first = body["preview"][0]
        assert [s["trained"] for s in first["segments"]] == [False, True]
        prompt, answer = (s["text"] for s in first["segments"])
        assert prompt == "<|im_start|>user<|im_sep|>你家有几个人?<|im_end|><|im_start|>assistant<|im_sep|>"
        assert answer == "我家有4个人,还有一只猫kitty。<|im_end|>"
        assert first["trained_tokens"] == first["segments"][1]["n_tokens"] > 0
        assert "".join(first["segments"][1]["tokens"]) == answer  # the tokens decode back to the text
        tokens = body["stats"]["tokens"]
        assert body["stats"]["examples"] == 9 and tokens["limit"] == 1024
        assert sum(b["examples"] for b in tokens["histogram"]) == 9
        assert tokens["trained"] < tokens["total"]
        assert body["knowledge"][0]["line"] == 1 and "JIM" in body["knowledge"][0]["text"]
        assert c.get("/v1/files", headers=auth()).json()["data"] == []  # checking keeps nothing

        broken = b'{"messages": [{"role": "user", "content": "hi"}\nnot json\n'
        r = check(c, broken)
        assert r.status_code == 200 and r.json()["ok"] is False
        errors = [(i["line"], i["field"]) for i in r.json()["issues"] if i["severity"] == "error"]
        assert (1, "json") in errors and (2, "json") in errors

        assert check(c, b"{}", model="no-such-model").json()["error"]["param"] == "model"
        assert check(c, b"{}", preview="99").json()["error"]["param"] == "preview"
        no_key = c.post("/v1/data/check", files={"file": ("a.jsonl", b"{}")})
        assert no_key.status_code == 401
        scoped = c.post("/v1/data/check", files={"file": ("a.jsonl", b"{}")}, headers=auth("k-chat"))
        assert scoped.status_code == 403 and scoped.json()["error"]["code"] == "jobs_not_allowed"


def test_kb_listing_and_documents(serve: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs, home = write_corpus(tmp_path / "docs"), tmp_path / "home"
    monkeypatch.setenv("IMPRINT_HOME", str(home))
    runner = CliRunner()
    for kb in ("web", "other", "hidden"):
        result = runner.invoke(cli, ["index", str(docs), "--kb", kb, "--embedder", FAST_EMBEDDER])
        assert result.exit_code == 0, result.output
    from indexing.registry import get_kb

    settings = {**KEYS, "exposed_kbs": ["other"]}
    with (
        serve(kb=get_kb("web", home=home), kb_name="web", home=home, **settings) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        listed = c.get("/v1/kb", headers=auth()).json()["data"]
        assert [(k["id"], k["served"]) for k in listed] == [("web", True), ("other", False)]  # not "hidden"
        assert listed[0]["documents"] == 6 and listed[0]["chunks"] > 6
        assert [k["id"] for k in c.get("/v1/kb", headers=auth("k-chat")).json()["data"]] == ["other"]

        r = c.get("/v1/kb/web/documents", headers=auth())
        assert r.status_code == 200, r.text
        by_id = {d["id"]: d for d in r.json()["data"]}
        returns = by_id["policies/returns.md"]
        assert returns["source"] == "policies/returns.md" and returns["modified"].endswith("Z")
        assert [ch["heading"] for ch in returns["chunks"]] == ["退货政策", "Refunds"]
        assert returns["chunks"][0]["start_char"] < returns["chunks"][1]["start_char"]
        assert str(tmp_path) not in r.text  # no absolute server path
        assert c.get("/v1/kb/hidden/documents", headers=auth()).status_code == 404
        assert c.get("/v1/kb/web/documents", headers=auth("k-chat")).status_code == 403


def test_page_and_assets_are_served_offline(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3, **KEYS) as url, httpx.Client(base_url=url, timeout=60) as c:
        page = c.get("/")  # public: it holds no data, and asks for the key itself
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]  # the browser refuses anything from elsewhere
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp and "script-src 'self'" in csp
        assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', page.text) if a != "data:,"]  # no favicon
        assert sorted(assets) == ["/console/console.css", "/console/console.js", "/console/plotly.min.js"]
        for path in assets:
            r = c.get(path)
            assert r.status_code == 200 and len(r.content) > 1000, path
            if path != "/console/plotly.min.js":  # the page's own code loads nothing from elsewhere
                assert not re.search(r"https?://", r.text), path
        assert "Plotly" in c.get("/console/plotly.min.js").text[:5000]
        missing = c.get("/console/../app.py")
        assert missing.status_code == 404
        assert c.get("/console/secrets.txt").json()["error"]["code"] == "not_found"
        assert c.get("/v1/models").status_code == 401  # the data behind the page is still keyed
