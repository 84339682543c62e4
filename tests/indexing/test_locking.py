"""The writer lock and crash repair, on real Chroma: an interrupted run is repaired by the next one."""

from __future__ import annotations

import fcntl
from pathlib import Path

import numpy as np
import pytest

import indexing.ingest as ingest
from indexing.errors import KBLockedError
from indexing.kb import KnowledgeBase
from training.errors import Conflict

from .conftest import FAST_EMBEDDER, assert_consistent


def _open(home: Path, name: str = "shop") -> KnowledgeBase:
    return KnowledgeBase.open(name, home=home, embedder=FAST_EMBEDDER, create=True)


def _notes(docs: Path, n: int = 6) -> None:
    for i in range(n):
        (docs / f"notes/n{i}.md").parent.mkdir(exist_ok=True)
        (docs / f"notes/n{i}.md").write_text(f"# Note {i}\n\nThe code word for day {i} is word{i}.\n")


def test_crash_mid_run_then_rerun_converges(docs: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _notes(docs)
    kb = _open(home)
    monkeypatch.setattr(ingest, "BATCH_DOCS", 2)
    emb = kb.embedder
    real_encode = emb._encode
    calls = {"n": 0}

    def flaky(texts: list[str], is_query: bool) -> np.ndarray:
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
    committed = len(kb.store.load_docstore().get_all_document_hashes())
    assert committed == 4  # two batches of two documents made it

    kb2 = KnowledgeBase.open("shop", home=home)  # a fresh process would start like this
    report = kb2.index(progress=False)
    assert (report.added, report.unchanged, report.deleted) == (12 - committed, committed, 0)
    assert_consistent(kb2)
    assert kb2.search("code word for day 5", k=1)[0].doc_id == "notes/n5.md"


@pytest.mark.parametrize("crash_in", ["commit", "delete_old_versions"])
def test_crash_while_replacing_keeps_one_version_and_rerun_converges(
    docs: Path, home: Path, monkeypatch: pytest.MonkeyPatch, crash_in: str
) -> None:
    """Add-then-delete opens two new windows: the new version written but not committed (crash in commit),
    and committed with the old version still in Chroma (crash in delete_old_versions). Either way the
    next run keeps exactly one version, the committed one, and ends equal to a clean build."""
    _notes(docs)
    kb = _open(home)
    kb.index([docs], progress=False)
    for i in range(6):
        (docs / f"notes/n{i}.md").write_text(f"# Note {i}\n\nThe code word for day {i} is now new{i}.\n")

    def crash(*args: object) -> None:
        raise RuntimeError(f"simulated crash in {crash_in}")

    monkeypatch.setattr(ingest, "BATCH_DOCS", 2)
    monkeypatch.setattr(ingest, crash_in, crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        kb.index(progress=False)
    monkeypatch.undo()
    texts = kb.store.collection.get(include=["documents"])["documents"]
    assert any("word0." in t for t in texts) and any("new0." in t for t in texts)  # both versions in Chroma
    # searches during the broken state still find the note, in one version or the other
    assert kb.search("code word for day 0", k=1)[0].doc_id == "notes/n0.md"

    report = KnowledgeBase.open("shop", home=home).index(progress=False)
    # the first batch (n0, n1) is re-embedded if its commit was lost, and already up to date if it was not
    assert report.updated == (6 if crash_in == "commit" else 4)
    assert_consistent(kb)
    texts = kb.store.collection.get(include=["documents"])["documents"]
    assert not any("is word" in t for t in texts) and sum("is now new" in t for t in texts) == 6

    clean = KnowledgeBase.open("clean", home=home, embedder=FAST_EMBEDDER, create=True)
    clean.index([docs], progress=False)
    mine, theirs = kb.store.collection.get(), clean.store.collection.get()
    assert sorted(zip(mine["ids"], mine["documents"], strict=True)) == sorted(
        zip(theirs["ids"], theirs["documents"], strict=True)
    )


def test_orphan_vectors_are_reconciled(docs: Path, home: Path) -> None:
    kb = _open(home)
    kb.index([docs], progress=False)
    # A crash after Chroma accepted vectors but before the docstore was written leaves orphans behind.
    kb.store.collection.add(
        ids=["ghost.md::0"],
        embeddings=[[0.1] * kb.embedder.dim],
        documents=["ghost"],
        metadatas=[{"document_id": "ghost.md", "doc_id": "ghost.md"}],
    )
    report = kb.index(progress=False)
    assert report.unchanged == 6 and report.embedded_chunks == 0
    assert "ghost.md::0" not in kb.store.collection.get()["ids"]
    assert_consistent(kb)


def test_second_writer_fails_clearly_while_locked(docs: Path, home: Path) -> None:
    kb = _open(home)
    with open(kb.root / ".lock", "a+") as f:  # another process holding the writer lock
        f.write("pid 4242")
        f.flush()
        fcntl.flock(f, fcntl.LOCK_EX)
        with pytest.raises(KBLockedError, match="being indexed by pid 4242") as err:
            kb.index([docs], progress=False, lock_timeout=0.5)
        fcntl.flock(f, fcntl.LOCK_UN)
    assert isinstance(err.value, Conflict) and err.value.kind == "conflict" and err.value.code == "kb_locked"
    assert kb.index([docs], progress=False).added == 6
