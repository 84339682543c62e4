"""The chunker is pure: exact strings and spans; the node parser is linear in the document's size."""

from __future__ import annotations

from typing import cast

import pytest
from llama_index.core import Document
from llama_index.core.schema import MetadataMode, TextNode

from indexing.chunking import CHUNK_OVERLAP, CHUNK_SIZE, Chunk, ImprintNodeParser, chunk_text, doc_version
from indexing.readers import make_document

DOC = (
    "# 价格\n\n苹果五元一斤。香蕉三元!Apples cost five. Bananas three.\n\n"
    "## 库存\n\n| 商品 | 库存 |\n|---|---|\n| 苹果 | 10 |\n| 香蕉 | 0 |\n\n结束;好的\n"
)


def test_sections_sentences_rows_and_spans() -> None:
    chunks = chunk_text(DOC, chunk_size=60, chunk_overlap=0)
    assert chunks == [
        Chunk("苹果五元一斤。香蕉三元!Apples cost five. Bananas three.", 6, 50, "价格", "价格"),
        Chunk("商品: 苹果 | 库存: 10", 81, 92, "库存", "价格 > 库存", "苹果"),
        Chunk("商品: 香蕉 | 库存: 0", 93, 103, "库存", "价格 > 库存", "香蕉"),
        Chunk("结束;好的", 105, 110, "库存", "价格 > 库存"),
    ]
    # A citation's span points at the exact source: the sentence, or the row's line.
    assert [DOC[c.start : c.end] for c in chunks] == [
        chunks[0].text,
        "| 苹果 | 10 |",
        "| 香蕉 | 0 |",
        "结束;好的",
    ]


def test_chinese_sentence_punctuation_splits_and_overlap_carries_whole_sentences() -> None:
    text = "第一句话。第二句话!第三句话?第四句话;第五句话。"
    chunks = chunk_text(text, chunk_size=12, chunk_overlap=5)
    assert [c.text for c in chunks] == [
        "第一句话。第二句话!",
        "第二句话!第三句话?",
        "第三句话?第四句话;",
        "第四句话;第五句话。",
    ]
    assert [(c.start, c.end) for c in chunks] == [(0, 10), (5, 15), (10, 20), (15, 25)]


def test_every_table_row_is_a_chunk_that_carries_its_header() -> None:
    """A small table is NOT kept whole: each row names its columns, so no value travels without its row."""
    text = "intro sentence here.\n\n| a | b |\n|:---|---:|\n| 1 | 2 |\n| 3 |  |\n\nafter."
    chunks = chunk_text(text, chunk_size=400, chunk_overlap=0)
    assert [(c.text, c.row_key) for c in chunks] == [
        ("intro sentence here.", ""),
        ("a: 1 | b: 2", "1"),
        ("a: 3", "3"),  # an empty cell says nothing
        ("after.", ""),
    ]


def test_a_table_without_header_separator_stays_whole_or_splits_between_rows() -> None:
    rows = "".join(f"| item{i} | {i}元 |\n" for i in range(4))
    text = "| name | price |\n" + rows
    assert [c.text for c in chunk_text(text, chunk_size=200, chunk_overlap=0)] == [text.rstrip("\n")]
    chunks = chunk_text(text, chunk_size=40, chunk_overlap=0)
    # Too long for one chunk: split between rows, each piece repeating the first two lines.
    assert [c.text for c in chunks] == [
        f"| name | price |\n| item0 | 0元 |\n| item{i} | {i}元 |" for i in (1, 2, 3)
    ]
    assert all(c.text.startswith("| name | price |") and c.row_key == "" for c in chunks)


def test_plain_text_without_headings_and_bad_config() -> None:
    assert chunk_text("Hello world. Bye now.", chunk_size=15, chunk_overlap=0) == [
        Chunk("Hello world.", 0, 12, "", ""),
        Chunk("Bye now.", 13, 21, "", ""),
    ]
    assert chunk_text("   \n\n") == []
    with pytest.raises(ValueError, match="chunk_overlap"):
        chunk_text("x", chunk_size=10, chunk_overlap=10)


def test_node_parser_gives_versioned_stable_ids_and_citation_metadata() -> None:
    doc = Document(id_="a.md", text=DOC, metadata={"title": "价格", "doc_id": "a.md"})
    nodes = [cast(TextNode, n) for n in ImprintNodeParser(chunk_size=60, chunk_overlap=0)([doc])]
    version = doc.hash[:16]
    assert doc_version(doc.hash) == version
    assert [n.id_ for n in nodes] == [f"a.md::{version}::{i}" for i in range(4)]
    assert [n.metadata["heading"] for n in nodes] == ["价格", "库存", "库存", "库存"]
    assert [n.metadata["row_key"] for n in nodes] == ["", "苹果", "香蕉", ""]
    spans = [(6, 50), (81, 92), (93, 103), (105, 110)]
    assert [(n.metadata["start_char"], n.metadata["end_char"]) for n in nodes] == spans
    assert {n.metadata["n_chunks"] for n in nodes} == {4}
    assert [(n.start_char_idx, n.end_char_idx) for n in nodes] == spans
    # The row's entity is in its text; the key itself stays out of what the embedder reads.
    assert nodes[1].get_content(metadata_mode=MetadataMode.EMBED).endswith("商品: 苹果 | 库存: 10")
    assert "row_key" not in nodes[1].get_content(metadata_mode=MetadataMode.EMBED)
    assert all(n.metadata["doc_version"] == version for n in nodes)
    source = nodes[0].source_node
    assert nodes[0].ref_doc_id == "a.md" and source is not None and source.hash == doc.hash
    # The version is not part of what the embedder reads (it changes whenever the document does).
    assert version not in nodes[0].get_content(metadata_mode=MetadataMode.EMBED)
    again = ImprintNodeParser(chunk_size=60, chunk_overlap=0).get_nodes_from_documents([doc])
    assert [n.id_ for n in again] == [n.id_ for n in nodes]
    edited = Document(id_="a.md", text=DOC.replace("五元", "六元"), metadata=doc.metadata)
    assert not {n.id_ for n in ImprintNodeParser().get_nodes_from_documents([edited])} & {
        n.id_ for n in nodes
    }


def _big_markdown(n_bytes: int) -> str:
    """Markdown with headings, Chinese and English sentences and a table too wide for one chunk."""
    rows = "".join(f"| 型号 {i} | {i * 10}元 | in stock |\n" for i in range(20))
    parts, size, i = [], 0, 0
    while size < n_bytes:
        part = (
            f"# 第{i}节\n\n星光台灯的价格是199元。Refunds are issued within five business days. "
            f"会员每消费一元积一分。\n\n| 型号 | 价格 | 库存 |\n|---|---|---|\n{rows}\n"
        )
        parts.append(part)
        size += len(part.encode("utf-8"))
        i += 1
    return "".join(parts)


def test_chunking_is_linear_not_quadratic_in_document_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect "chunking is quadratic": the parser re-hashed the whole document for every chunk
    (as_related_node_info), and llama-index's post-processing searched the document for every chunk's text
    (1 MB took 10 s, 2 MB 40 s). Both are counted here, machine speed aside: one hash per document, whatever
    its size, and no per-chunk search. (eval/bench/chunking.py measures the time: linear, 0.08 s/MB.)"""
    from llama_index.core.node_parser import NodeParser

    hashed: list[str] = []
    real_related = Document.as_related_node_info
    monkeypatch.setattr(
        Document, "as_related_node_info", lambda self: hashed.append(self.id_) or real_related(self)
    )
    searched: list[int] = []
    real_post = NodeParser._postprocess_parsed_nodes
    monkeypatch.setattr(
        NodeParser,
        "_postprocess_parsed_nodes",
        lambda self, nodes, m: searched.append(1) or real_post(self, nodes, m),
    )
    for size in (500_000, 2_000_000):
        hashed.clear()
        doc = make_document(
            "big.md",
            _big_markdown(size),
            source="big.md",
            title="big",
            modified="2024-01-01T00:00:00Z",
            fmt="markdown",
        )
        nodes = ImprintNodeParser(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)([doc])
        assert len(nodes) > size // 1000 and hashed == ["big.md"], (len(nodes), len(hashed))
    assert searched == []
