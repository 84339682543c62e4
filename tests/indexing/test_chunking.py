"""The chunker is pure: exact strings and spans."""

from __future__ import annotations

import pytest

from indexing.chunking import Chunk, ImprintNodeParser, chunk_text
from indexing.tokenize import tokenize

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


def test_node_parser_gives_stable_ids_and_citation_metadata() -> None:
    from llama_index.core import Document

    doc = Document(id_="a.md", text=DOC, metadata={"title": "价格", "doc_id": "a.md"})
    nodes = ImprintNodeParser(chunk_size=60, chunk_overlap=0).get_nodes_from_documents([doc])
    assert [n.id_ for n in nodes] == ["a.md::0", "a.md::1"]
    assert [n.metadata["heading"] for n in nodes] == ["价格", "库存"]
    assert [(n.metadata["start_char"], n.metadata["end_char"], n.metadata["n_chunks"]) for n in nodes] == [
        (6, 50, 2),
        (59, 110, 2),
    ]
    assert nodes[0].ref_doc_id == "a.md"


def test_tokenizer_splits_chinese_words_adds_their_characters_and_drops_stopwords() -> None:
    assert tokenize("退货政策是怎样的? What are the Refunds policies? SKU-123 价格3.5元") == [
        "退货", "政策", "refund", "policy", "sku-123", "价格", "3.5", "元",
        "退", "货", "政", "策", "价", "格",
    ]  # fmt: skip
