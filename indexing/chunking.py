"""Heading-, table- and Chinese-aware chunking (pure: no models, no I/O).

    python -m indexing.chunking FILE.md          # print the chunks of one file with their spans

Why custom: llama-index's ``SentenceSplitter`` treats a run of Chinese as one "sentence" (it splits on ``.?!``
and whitespace), cuts Markdown tables in half and forgets which section a chunk came from. Here a document is
split into sections at Markdown headings, each section into blocks (paragraphs split into sentences on
``。!?;!?;`` and English sentence ends), and blocks are packed greedily into chunks of at most ``chunk_size``
characters with ``chunk_overlap`` characters of trailing sentences carried over. Every chunk records its
character span in the original text, so a citation can point at the exact place.

Tables: every data row of a Markdown table (header + ``|---|`` separator) is its OWN chunk, written as
``column: value`` pairs (``商品: 星光台灯 | 价格: 199元 | 库存: 12``, ``training.prompting.table_row_text``)
with its first cell as ``row_key``: a question about one product retrieves that product's row — not a whole
table whose other rows hold other products' numbers (the 270M model copies the wrong row from those), and the
row ranks first when the question names its key (``indexing.search``). A row's span is the row's line.

``ImprintNodeParser`` wraps :func:`chunk_text` as a llama-index ``NodeParser`` with deterministic node ids
(``{doc_id}::{version}::{n}``, ``version`` = the start of the document's hash): a re-run after a crash makes
the same ids (it converges instead of duplicating chunks), and an edited document's chunks get new ids, so the
new version can be written next to the old one before the old one is deleted (a search never finds neither).

Linear in the document's size: the document's hash (``as_related_node_info``) is computed once per
document, not once per chunk, and llama-index's post-processing, which searches the whole document for every
chunk's text (``str.find``), is skipped because the spans are already exact (measured in
``eval/bench/results/chunking.md``).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, NodeRelationship, TextNode
from pydantic import Field

from training.prompting import split_table_row, table_row_text

HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
# One sentence: a run without a Chinese/full-width terminator, plus the terminator; or an English sentence
# ending in .?! followed by whitespace. Spans come from match offsets, so nothing is lost between sentences.
SENTENCE_RE = re.compile(r"[^。!?;!?;\n]+?(?:[。!?;!?;]+|[.?!](?=\s)|$)|\n+", re.MULTILINE)
# A Markdown table's header separator row: | --- | :---: | ---: |
SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
# The one place the chunking defaults are written (IndexConfig, KnowledgeBase.open and the parser use these).
CHUNK_SIZE = 400
CHUNK_OVERLAP = 60
# Hex digits of the document hash in node ids and in the ``doc_version`` metadata key.
VERSION_LEN = 16


@dataclass(frozen=True)
class Chunk:
    """One chunk: its text, the span ``[start, end)`` in the source text and the section it belongs to."""

    text: str
    start: int
    end: int
    heading: str  # innermost Markdown heading ("" before the first heading)
    section_path: str  # all enclosing headings, "A > B > C"
    row_key: str = ""  # a table row's first cell (its entity); "" for prose


@dataclass(frozen=True)
class _Unit:
    """An indivisible piece: a sentence, a table row (``row_text`` set), or a whole table without a header
    separator (``table_header`` set)."""

    start: int
    end: int
    table_header: tuple[int, int] | None = None  # span of the first rows when this unit is a whole table
    row_text: str = ""  # "column: value | …" when this unit is one row of a table with a header
    row_key: str = ""


def _sections(text: str) -> list[tuple[int, int, str, str]]:
    """(body_start, body_end, heading, section_path) per Markdown section; heading lines excluded."""
    sections: list[tuple[int, int, str, str]] = []
    stack: list[tuple[int, str]] = []
    body_start, heading, path = 0, "", ""
    pos = 0
    in_fence = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else HEADING_RE.match(line.rstrip("\r\n"))
        if match:
            sections.append((body_start, pos, heading, path))
            level, title = len(match.group(1)), match.group(2).strip()
            stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
            heading, path = title, " > ".join(t for _, t in stack)
            body_start = pos + len(line)
        pos += len(line)
    sections.append((body_start, len(text), heading, path))
    return [s for s in sections if text[s[0] : s[1]].strip()]


def _table_rows(text: str, start: int, rows: list[str]) -> list[_Unit] | None:
    """One unit per data row when ``rows`` (a table's lines, from ``start``) have a header and separator."""
    if len(rows) < 3 or not SEPARATOR_RE.match(rows[1].rstrip("\r\n")):
        return None
    header = split_table_row(rows[0])
    units, pos = [], start + len(rows[0]) + len(rows[1])
    for row in rows[2:]:
        line = row.rstrip("\r\n")
        cells = split_table_row(line)
        if any(cells):
            key = next((c for c in cells if c), "")
            units.append(_Unit(pos, pos + len(line), row_text=table_row_text(header, cells), row_key=key))
        pos += len(row)
    return units


def _units(text: str, start: int, end: int) -> list[_Unit]:
    """Split ``text[start:end]`` into sentences, table rows and (header-less) whole tables."""
    units: list[_Unit] = []
    pos = start
    lines = text[start:end].splitlines(keepends=True)
    i = 0
    prose_start = start
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|"):
            units += _sentences(text, prose_start, pos)
            table_start = pos
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                pos += len(lines[j])
                j += 1
            rows = _table_rows(text, table_start, lines[i:j])
            if rows is not None:
                units += rows
            else:
                header_end = table_start + sum(len(row) for row in lines[i : min(i + 2, j)])
                table_end = pos
                while table_end > table_start and text[table_end - 1] in "\r\n":
                    table_end -= 1
                units.append(_Unit(table_start, table_end, (table_start, header_end)))
            prose_start = pos
            i = j
            continue
        pos += len(line)
        i += 1
    units += _sentences(text, prose_start, end)
    return units


def _sentences(text: str, start: int, end: int) -> list[_Unit]:
    out: list[_Unit] = []
    for m in SENTENCE_RE.finditer(text, start, end):
        s, e = m.start(), m.end()
        # Trim surrounding whitespace so spans point at words, not at blank lines.
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            out.append(_Unit(s, e))
    return out


def _split_long(text: str, unit: _Unit, size: int) -> list[tuple[str, int, int]]:
    """A unit longer than ``size``: tables by rows (header repeated), prose by hard character windows."""
    if unit.table_header is not None:
        header = text[unit.table_header[0] : unit.table_header[1]]
        rows_start = unit.table_header[1]
        pieces: list[tuple[str, int, int]] = []
        cur_start, cur_end = rows_start, rows_start
        for row in text[rows_start : unit.end].splitlines(keepends=True):
            if cur_end > cur_start and len(header) + (cur_end + len(row) - cur_start) > size:
                pieces.append((header + text[cur_start:cur_end], cur_start, cur_end))
                cur_start = cur_end
            cur_end += len(row)
        if cur_end > cur_start:
            pieces.append((header + text[cur_start:cur_end], cur_start, cur_end))
        return [
            (t.rstrip("\r\n"), s, e - (len(text[s:e]) - len(text[s:e].rstrip("\r\n")))) for t, s, e in pieces
        ]
    return [
        (text[s : min(s + size, unit.end)], s, min(s + size, unit.end))
        for s in range(unit.start, unit.end, size)
    ]


def chunk_text(text: str, *, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    """Chunk ``text`` (Markdown or plain) into pieces of at most ``chunk_size`` characters.

    Each row of a table with a header is its own chunk (``column: value`` pairs, span = the row's line). A
    table without a header separator stays whole unless it exceeds ``chunk_size``; then it is split between
    rows and each piece repeats the first rows. ``chunk_overlap`` characters' worth of whole trailing
    sentences (never tables) are repeated at the start of the next chunk in the same section.
    """
    if chunk_size <= 0 or not 0 <= chunk_overlap < chunk_size:
        raise ValueError(
            f"need chunk_size > 0 and 0 <= chunk_overlap < chunk_size, got {chunk_size}, {chunk_overlap}"
        )
    chunks: list[Chunk] = []
    for sec_start, sec_end, heading, path in _sections(text):
        current: list[_Unit] = []

        def flush(units: list[_Unit], heading: str = heading, path: str = path) -> None:
            if units:
                s, e = units[0].start, units[-1].end
                chunks.append(Chunk(text[s:e], s, e, heading, path))

        for unit in _units(text, sec_start, sec_end):
            if unit.row_text:
                flush(current)
                current = []
                chunks.append(Chunk(unit.row_text, unit.start, unit.end, heading, path, unit.row_key))
                continue
            if unit.end - unit.start > chunk_size:
                flush(current)
                current = []
                for piece, s, e in _split_long(text, unit, chunk_size):
                    chunks.append(Chunk(piece, s, e, heading, path))
                continue
            if current and unit.end - current[0].start > chunk_size:
                flush(current)
                # Carry whole trailing sentences (not tables) that fit in the overlap budget.
                carried: list[_Unit] = []
                for prev in reversed(current):
                    if prev.table_header is not None or unit.end - prev.start > chunk_size:
                        break
                    if current[-1].end - prev.start > chunk_overlap:
                        break
                    carried.insert(0, prev)
                current = carried
            current.append(unit)
        flush(current)
    return chunks


# Keys that locate a chunk (or its version); kept out of the text the embedder and the LLM see.
_POSITION_KEYS = [
    "section_path",
    "start_char",
    "end_char",
    "chunk_index",
    "n_chunks",
    "doc_version",
    "row_key",
]


def doc_version(doc_hash: str) -> str:
    """The version stamp of a document with hash ``doc_hash``, as used in node ids and ``doc_version``."""
    return doc_hash[:VERSION_LEN]


class ImprintNodeParser(NodeParser):
    """llama-index NodeParser over :func:`chunk_text`; node ids are ``{doc_id}::{version}::{n}``."""

    chunk_size: int = Field(default=CHUNK_SIZE, gt=0)
    chunk_overlap: int = Field(default=CHUNK_OVERLAP, ge=0)
    # No PREVIOUS/NEXT links: nothing reads them, and each one costs a hash of the neighbouring chunk.
    include_prev_next_rel: bool = False

    def _parse_nodes(
        self, nodes: Sequence[BaseNode], show_progress: bool = False, **kwargs: Any
    ) -> list[BaseNode]:
        out: list[BaseNode] = []
        for doc in nodes:
            # Once per document: as_related_node_info() hashes the whole text, so calling it per chunk made
            # chunking quadratic (a 1 MB document took 10 s, a 2 MB one 40 s).
            source = doc.as_related_node_info()
            version = doc_version(source.hash or "")
            text = doc.get_content()
            chunks = chunk_text(text, chunk_size=self.chunk_size, chunk_overlap=self.chunk_overlap)
            embed_excluded = list(doc.excluded_embed_metadata_keys) + _POSITION_KEYS
            llm_excluded = list(doc.excluded_llm_metadata_keys) + _POSITION_KEYS
            for n, chunk in enumerate(chunks):
                metadata = dict(doc.metadata)
                metadata.update(
                    heading=chunk.heading or metadata.get("title", ""),
                    section_path=chunk.section_path,
                    start_char=chunk.start,
                    end_char=chunk.end,
                    chunk_index=n,
                    n_chunks=len(chunks),  # lets a crash recovery tell a complete document from a partial one
                    doc_version=version,  # lets it tell the committed version from an interrupted new one
                    row_key=chunk.row_key,  # a table row's entity (search ranks it first when named)
                )
                node = TextNode(
                    id_=f"{doc.id_}::{version}::{n}",
                    text=chunk.text,
                    metadata=metadata,
                    excluded_embed_metadata_keys=embed_excluded,
                    excluded_llm_metadata_keys=llm_excluded,
                    start_char_idx=chunk.start,
                    end_char_idx=chunk.end,
                )
                node.relationships[NodeRelationship.SOURCE] = source
                out.append(node)
        return out

    def _postprocess_parsed_nodes(
        self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]
    ) -> list[BaseNode]:
        # The base class re-finds every chunk's text in its document (str.find from the previous chunk; the
        # whole rest of the document when the text is not verbatim there, as for a split table that repeats
        # its header) and merges metadata again. _parse_nodes already set exact spans and metadata.
        return nodes


def _main(argv: list[str]) -> None:
    for path in argv:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for c in chunk_text(text):
            print(f"[{c.start}:{c.end}] {c.section_path or '-'}\n{c.text}\n")


if __name__ == "__main__":
    _main(sys.argv[1:])
