"""Listing, deleting and sharing KBs on real Chroma."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexing.errors import KBError, KBNotFoundError
from indexing.kb import KnowledgeBase
from indexing.registry import delete_kb, get_kb, list_kbs

from .conftest import FAST_EMBEDDER


def test_list_get_and_delete(docs: Path, home: Path) -> None:
    kb = KnowledgeBase.open("shop", home=home, embedder=FAST_EMBEDDER, create=True)
    kb.index([docs], progress=False)
    assert [(m["name"], m["documents"]) for m in list_kbs(home)] == [("shop", 6)]
    shared = get_kb("shop", home=home)
    assert get_kb("shop", home=home) is shared and shared is not kb  # one instance per process
    assert shared.search("warranty", k=1)[0].doc_id == "faq.jsonl#warranty"

    delete_kb("shop", home=home)
    assert list_kbs(home) == [] and not kb.root.exists()
    with pytest.raises(KBNotFoundError, match="no knowledge base 'shop'") as err:
        get_kb("shop", home=home)
    assert err.value.kind == "not_found" and err.value.param == "name"
    with pytest.raises(KBNotFoundError):
        delete_kb("shop", home=home)

    again = KnowledgeBase.open("shop", home=home, embedder=FAST_EMBEDDER, create=True)  # same name, fresh KB
    assert again.index([docs], progress=False).added == 6 and again.search("warranty", k=1)[0].doc_id
    assert get_kb("shop", home=home) is not shared


@pytest.mark.parametrize("name", ["bad name", "../escape", "", ".hidden", "x" * 64])
def test_a_bad_kb_name_is_invalid_input_naming_the_field(home: Path, name: str) -> None:
    for call in (lambda: get_kb(name, home=home), lambda: delete_kb(name, home=home)):
        with pytest.raises(KBError, match="invalid KB name") as err:
            call()
        assert err.value.kind == "invalid" and err.value.param == "name"
    assert not (home / "kb").exists() or list((home / "kb").iterdir()) == []
