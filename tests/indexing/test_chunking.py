"""The chunker is pure: exact strings and spans; the node parser is linear in the document's size."""

from __future__ import annotations

import time
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


def test_sections_sentences_and_spans() -> None:
    chunks = chunk_text(DOC, chunk_size=60, chunk_overlap=0)
    assert chunks == [
        Chunk("苹果五元一斤。香蕉三元!Apples cost five. Bananas three.", 6, 50, "价格", "价格"),
        Chunk(
            "| 商品 | 库存 |\n|---|---|\n| 苹果 | 10 |\n| 香蕉 | 0 |\n\n结束;好的",
            59,
            110,
            "库存",
            "价格 > 库存",
        ),
    ]
    for c in chunks:
        assert DOC[c.start : c.end] == c.text


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


def test_table_is_never_split_when_it_fits() -> None:
    text = "intro sentence here.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nafter."
    chunks = chunk_text(text, chunk_size=45, chunk_overlap=0)
    assert [c.text for c in chunks] == [
        "intro sentence here.",
        "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |",
        "after.",
    ]
    wide = chunk_text(text, chunk_size=80, chunk_overlap=0)
    assert [c.text for c in wide] == [text]


def test_oversized_table_splits_between_rows_and_repeats_header() -> None:
    rows = "".join(f"| item{i} | {i}元 |\n" for i in range(4))
    text = "| name | price |\n|---|---|\n" + rows
    chunks = chunk_text(text, chunk_size=50, chunk_overlap=0)
    assert [c.text for c in chunks] == [
        "| name | price |\n|---|---|\n| item0 | 0元 |",
        "| name | price |\n|---|---|\n| item1 | 1元 |",
        "| name | price |\n|---|---|\n| item2 | 2元 |",
        "| name | price |\n|---|---|\n| item3 | 3元 |",
    ]
    assert text[chunks[1].start : chunks[1].end] == "| item1 | 1元 |"


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
    assert [n.id_ for n in nodes] == [f"a.md::{version}::0", f"a.md::{version}::1"]
    assert [n.metadata["heading"] for n in nodes] == ["价格", "库存"]
    assert [(n.metadata["start_char"], n.metadata["end_char"], n.metadata["n_chunks"]) for n in nodes] == [
        (6, 50, 2),
        (59, 110, 2),
    ]
    assert [(n.start_char_idx, n.end_char_idx) for n in nodes] == [(6, 50), (59, 110)]
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


def _parse_seconds(text: str) -> tuple[float, int]:
    doc = make_document(
        "big.md", text, source="big.md", title="big", modified="2024-01-01T00:00:00Z", fmt="markdown"
    )
    best, n = float("inf"), 0
    for _ in range(2):
        t0 = time.process_time()
        n = len(ImprintNodeParser(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)([doc]))
        best = min(best, time.process_time() - t0)
    return best, n


def test_chunking_is_linear_not_quadratic_in_document_size() -> None:
    """Defect "chunking is quadratic": the parser re-hashed the whole document for every chunk
    (as_related_node_info), and llama-index's post-processing searched the document for every chunk's text:
    1 MB took 10 s, 2 MB 40 s. 4x the text must now cost about 4x the time (quadratic would be 16x)."""
    small_s, small_n = _parse_seconds(_big_markdown(500_000))
    big_s, big_n = _parse_seconds(_big_markdown(2_000_000))
    assert 3.5 < big_n / small_n < 4.5  # the documents really differ 4x in chunks
    assert big_s / small_s < 8, (small_s, big_s)
