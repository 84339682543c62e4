"""Chunking cost vs document size: chunk_text and the llama-index node parser must scale linearly.

    python -m eval.bench.chunking [--sizes 0.25 0.5 1 2 4 8 16] [--baseline-max-mb 1]

Writes ``chunking.json`` and ``chunking.md`` in ``eval/bench/results``. For each size (MB of UTF-8) one
synthetic Markdown document is built (headed sections of Chinese and English sentences, and a price table too
wide for one chunk, so tables are split with their header repeated) and timed:
- ``chunk_text`` alone (pure Python: sections, sentences, packing);
- ``ImprintNodeParser`` (chunk_text + llama-index nodes with citation metadata), what indexing runs;
- ``s/MB`` and the growth factor against the previous size: linear scaling keeps s/MB flat and the factor near
  the size ratio (2x), a quadratic one doubles s/MB at every step.
``--baseline-max-mb``: also time the parser as it was before the fix (the document hashed once per chunk,
llama-index's per-chunk ``str.find`` post-processing) up to that size, for comparison.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path
from typing import Any

from llama_index.core.node_parser import NodeParser
from llama_index.core.schema import BaseNode, Document, NodeRelationship
from rich.console import Console
from rich.table import Table

from indexing.chunking import CHUNK_OVERLAP, CHUNK_SIZE, ImprintNodeParser, chunk_text
from indexing.readers import make_document
from training.fileio import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"
SIZES_MB = [0.25, 0.5, 1, 2, 4, 8, 16]


class BeforeFixParser(ImprintNodeParser):
    """The parser before the fix, for the baseline column: the document's hash (as_related_node_info)
    computed once per chunk, and the base class's post-processing (str.find of every chunk in the document,
    PREVIOUS/NEXT links)."""

    include_prev_next_rel: bool = True

    def _parse_nodes(self, nodes: Any, show_progress: bool = False, **kwargs: Any) -> list[BaseNode]:
        out = super()._parse_nodes(nodes, show_progress, **kwargs)
        docs = {d.id_: d for d in nodes}
        for node in out:
            node.relationships[NodeRelationship.SOURCE] = docs[node.ref_doc_id or ""].as_related_node_info()
        return out

    def _postprocess_parsed_nodes(self, nodes: list[BaseNode], parent_doc_map: dict[str, Document]) -> Any:
        return NodeParser._postprocess_parsed_nodes(self, nodes, parent_doc_map)


def synthetic_markdown(n_bytes: int) -> str:
    """About ``n_bytes`` of UTF-8 Markdown like a product manual (zh + en prose, wide tables)."""
    rows = "".join(f"| 型号 LX-{i:03d} | {99 + i * 10}元 | in stock: {i * 7} |\n" for i in range(16))
    parts, size, i = [], 0, 0
    while size < n_bytes:
        part = (
            f"# 第{i}章 产品说明\n\n星光台灯 LX-{i % 100:03d} 采用护眼光源,亮度可以无级调节。"
            "签收后七天内可以无理由退货;退货运费由买家承担。\n\n"
            f"## Warranty {i}\n\nEvery lamp carries a two-year warranty covering electrical faults. "
            "Refunds are issued to the original payment method within five business days.\n\n"
            f"## 价格表 {i}\n\n| 型号 | 价格 | 库存 |\n|---|---|---|\n{rows}\n"
        )
        parts.append(part)
        size += len(part.encode("utf-8"))
        i += 1
    return "".join(parts)


def _time(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    """CPU seconds of this process, best of ``repeat`` runs: on a shared machine wall time also counts the
    neighbours' work, which hides how the algorithm scales."""
    best, out = float("inf"), None
    for _ in range(repeat):
        gc.collect()  # start each run from the same heap, not with the previous run's garbage
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def measure(size_mb: float, baseline: bool) -> dict[str, Any]:
    text = synthetic_markdown(int(size_mb * 1_000_000))
    doc = make_document("manual.md", text, source="manual.md", title="manual", modified="", fmt="markdown")
    repeat = 3 if size_mb <= 4 else 2
    chunk_s, chunks = _time(
        lambda: chunk_text(text, chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP), repeat
    )
    parse_s, nodes = _time(lambda: ImprintNodeParser()([doc]), repeat)
    assert len(nodes) == len(chunks)
    row: dict[str, Any] = {
        "size_mb": size_mb,
        "chars": len(text),
        "chunks": len(chunks),
        "chunk_text_s": round(chunk_s, 3),
        "node_parse_s": round(parse_s, 3),
        "node_parse_s_per_mb": round(parse_s / size_mb, 3),
        "before_fix_node_parse_s": None,
    }
    if baseline:
        row["before_fix_node_parse_s"] = round(_time(lambda: BeforeFixParser()([doc]))[0], 3)
    return row


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Chunking cost vs document size (eval/bench/chunking.py)",
        "",
        f"One synthetic Markdown document per size (zh + en prose, wide tables), chunk_size {CHUNK_SIZE}, "
        f"overlap {CHUNK_OVERLAP}. `growth` = node-parse time / the previous size's (the size doubles, so "
        "linear ≈ 2, quadratic ≈ 4). `before fix` = the parser before the fix (document hashed once per "
        "chunk, per-chunk `str.find` post-processing). Times are CPU seconds, best of 3 runs up to 4 MB, "
        "of 2 above.",
        "",
        "| MB | chars | chunks | chunk_text s | node parse s | s/MB | growth | before fix s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    prev = None
    for r in rows:
        growth = "" if prev is None else f"{r['node_parse_s'] / max(prev['node_parse_s'], 1e-9):.2f}"
        before = "" if r["before_fix_node_parse_s"] is None else f"{r['before_fix_node_parse_s']:.2f}"
        lines.append(
            f"| {r['size_mb']:g} | {r['chars']:,} | {r['chunks']:,} | {r['chunk_text_s']:.2f} | "
            f"{r['node_parse_s']:.2f} | {r['node_parse_s_per_mb']:.2f} | {growth} | {before} |"
        )
        prev = r
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=SIZES_MB, help="document sizes in MB")
    ap.add_argument("--baseline-max-mb", type=float, default=1.0, help="time the pre-fix parser up to this")
    a = ap.parse_args()
    rows = []
    console = Console()
    for size in a.sizes:
        rows.append(measure(size, baseline=size <= a.baseline_max_mb))
        console.print(rows[-1])
    atomic_write(RESULTS / "chunking.json", json.dumps(rows, indent=2) + "\n")
    atomic_write(RESULTS / "chunking.md", to_markdown(rows))
    table = Table(title="chunking cost")
    for col in ("MB", "chunks", "chunk_text s", "node parse s", "s/MB", "before fix s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            f"{r['size_mb']:g}",
            str(r["chunks"]),
            f"{r['chunk_text_s']:.2f}",
            f"{r['node_parse_s']:.2f}",
            f"{r['node_parse_s_per_mb']:.2f}",
            "-" if r["before_fix_node_parse_s"] is None else f"{r['before_fix_node_parse_s']:.2f}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
