"""The KB files: the chunk store is a cache of Chroma; a damaged manifest is an error naming the file."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from indexing.errors import KBError
from indexing.kb import KnowledgeBase
from indexing.store import CHUNKS_FORMAT
from training.errors import Unavailable

from .conftest import FAST_EMBEDDER, assert_consistent


@pytest.mark.parametrize("damage", [b"not a pickle", pickle.dumps({"x": 1}), pickle.dumps({"format": 1})])
def test_an_old_or_damaged_chunk_store_is_rebuilt_from_chroma(docs: Path, home: Path, damage: bytes) -> None:
    kb = KnowledgeBase.open("shop", home=home, embedder=FAST_EMBEDDER, create=True)
    kb.index([docs], progress=False)
    saved = kb.store.read_chunks()
    assert saved is not None and len(saved) == kb.store.collection.count()
    kb.store.chunks_path.write_bytes(damage)  # e.g. written by a version whose chunk class has moved
    assert kb.store.read_chunks() is None

    reader = KnowledgeBase.open("shop", home=home)  # a searching process: rebuilds its view from Chroma
    hit = reader.search("星光台灯价格", k=1, mode="bm25")[0]
    assert hit.doc_id == "products/prices.md" and "199元" in hit.text
    assert reader.views.get().chunks == saved

    report = kb.index(progress=False)  # the writer repairs the file without re-embedding anything
    assert report.embedded_chunks == 0 and report.unchanged == 6
    assert pickle.loads(kb.store.chunks_path.read_bytes())["format"] == CHUNKS_FORMAT
    assert kb.store.read_chunks() == saved
    assert_consistent(kb)


def test_a_damaged_manifest_is_an_error_naming_the_file(home: Path) -> None:
    KnowledgeBase.open("shop", home=home, embedder=FAST_EMBEDDER, create=True)
    manifest = home / "kb" / "shop" / "kb.json"
    manifest.write_text("{not json", encoding="utf-8")
    with pytest.raises(KBError, match=r"kb\.json: cannot read the KB manifest .*delete the folder"):
        KnowledgeBase.open("shop", home=home)
    manifest.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(KBError, match=r"kb\.json: not a KB manifest"):
        KnowledgeBase.open("shop", home=home)


def test_an_unreachable_chroma_server_is_unavailable_naming_the_url(docs: Path, home: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    kb = KnowledgeBase.open("remote", home=home, embedder=FAST_EMBEDDER, chroma_url=url, create=True)
    with pytest.raises(Unavailable, match=f"Chroma server {url} is not reachable") as err:
        kb.index([docs], progress=False)
    assert err.value.param == "chroma_url" and err.value.kind == "unavailable"
