"""Reliability benchmark: first-token latency of a streamed answer on a clean server vs right after 10
streams were dropped mid-answer — in one run, on the real app (uvicorn, embedded engine, raw SSE).

A dropped stream must stop its generation within a token or two; if it did not, the one engine worker
would finish every abandoned answer (``--abort-max-tokens`` each) before the next user got a first token.

    python -m eval.bench.reliability                            # gemma3-270m (the embedded default)
    python -m eval.bench.reliability --base-model tiny-phi3     # seconds, for a quick look

Writes eval/bench/results/reliability_<base>.json (+ .md) and prints the table. Goal: the first token right
after the drops within 1.5× of a clean server's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results"
PROBE = "老大是谁?"
LONG = "Write a very long story about a lamp shop, chapter by chapter, with every detail."


def first_token_s(url: str, question: str, max_tokens: int, *, hang_up: bool = False) -> float:
    """Seconds from sending a streamed request to its first non-empty content delta (then read the rest,
    or hang up right there when ``hang_up``)."""
    body = {
        "model": "imprint-adapter:bench",
        "messages": [{"role": "user", "content": question}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    t0 = time.perf_counter()
    first = None
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=1800) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if first is None and line.startswith("data: {") and _content(line):
                first = time.perf_counter() - t0
                if hang_up:
                    break  # leaving the block closes the connection mid-answer
    if first is None:
        raise RuntimeError("the stream ended without any content")
    return first


def _content(line: str) -> str:
    choices = json.loads(line[6:]).get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


def stopped_after_s(engine: Any, timeout_s: float = 1800) -> float:
    """Seconds until the engine's worker has no generation running (called right after a hang-up)."""
    t0 = time.perf_counter()
    while engine.busy and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.002)
    return time.perf_counter() - t0


def decode_step_s(url: str, tokens: int = 32) -> float:
    """Seconds per generated token on this machine (a plain answer of ``tokens`` tokens, minus its first)."""
    body = {
        "model": "imprint-adapter:bench",
        "messages": [{"role": "user", "content": LONG}],
        "max_tokens": tokens,
        "temperature": 0,
    }
    t0 = time.perf_counter()
    usage = httpx.post(url + "/v1/chat/completions", json=body, timeout=600).json()["usage"]
    total = time.perf_counter() - t0
    return (total - first_token_s(url, LONG, 1)) / max(usage["completion_tokens"] - 1, 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-model", default="gemma3-270m")
    ap.add_argument("--aborted", type=int, default=10, help="streams dropped after their first token")
    ap.add_argument("--abort-max-tokens", type=int, default=512, help="max_tokens of each dropped stream")
    ap.add_argument("--probes", type=int, default=5, help="first-token measurements per condition")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from eval.bench.service_bench import random_adapter
    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from service.engines.embedded import EmbeddedEngine
    from training.models import load_base_model, resolve_base_model

    base = resolve_base_model(args.base_model)
    model, tok = load_base_model(base, device="cpu")
    adapter_dir = random_adapter(base, Path(tempfile.mkdtemp(prefix="imprint-bench-")) / "bench")
    engine = EmbeddedEngine(model, tok, adapters={"bench": adapter_dir})
    settings = ServeConfig.load(adapters=[adapter_dir], max_tokens_limit=max(args.abort_max_tokens, 4096))
    app = create_app(settings, engine=engine, tokenizer=tok)

    with serve_in_thread(app) as url:
        first_token_s(url, PROBE, 4)  # warm-up: first prefill, caches
        step = decode_step_s(url)
        clean = [first_token_s(url, PROBE, 8) for _ in range(args.probes)]
        abort_ttft, stops, t_aborts = [], [], time.perf_counter()
        for i in range(args.aborted):
            abort_ttft.append(first_token_s(url, LONG, args.abort_max_tokens, hang_up=True))
            if i < args.aborted - 1:  # the last one is left to the next user's request, like in real life
                stops.append(stopped_after_s(engine))
        aborts_s = time.perf_counter() - t_aborts
        right_after = first_token_s(url, PROBE, 8)  # the next user, immediately after the 10th drop
        after = [right_after] + [first_token_s(url, PROBE, 8) for _ in range(args.probes - 1)]

    clean_ms, after_ms = statistics.median(clean) * 1000, statistics.median(after) * 1000
    result = {
        "base_model": args.base_model,
        "aborted_streams": args.aborted,
        "abort_max_tokens": args.abort_max_tokens,
        "probes": args.probes,
        "first_token_clean_ms": [round(x * 1000, 1) for x in clean],
        "first_token_after_aborts_ms": [round(x * 1000, 1) for x in after],
        "first_token_right_after_aborts_ms": round(right_after * 1000, 1),
        "first_token_of_dropped_streams_ms": [round(x * 1000, 1) for x in abort_ttft],
        "dropping_all_streams_s": round(aborts_s, 2),
        "decode_step_ms": round(step * 1000, 1),
        "generation_stopped_after_hang_up_ms": [round(x * 1000, 1) for x in stops],
        "clean_p50_ms": round(clean_ms, 1),
        "after_aborts_p50_ms": round(after_ms, 1),
        "ratio_after_vs_clean": round(after_ms / clean_ms, 2),
        "ratio_right_after_vs_clean": round(right_after * 1000 / clean_ms, 2),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": "2 shared CPU cores, no GPU",
    }
    table = Table(title=f"reliability bench ({args.base_model})")
    table.add_column("measure")
    table.add_column("value")
    rows = [
        ("first token, clean server (p50)", f"{clean_ms:.1f} ms"),
        (f"first token, right after {args.aborted} dropped streams", f"{right_after * 1000:.1f} ms"),
        (f"first token after {args.aborted} dropped streams (p50)", f"{after_ms:.1f} ms"),
        ("right after / clean (goal ≤ 1.5)", f"{result['ratio_right_after_vs_clean']}"),
        ("after / clean (p50)", f"{result['ratio_after_vs_clean']}"),
        (f"{args.aborted} streams opened and dropped after their first token", f"{aborts_s:.2f} s"),
        (
            "generation stopped after the hang-up (p50 / max)",
            f"{statistics.median(stops) * 1000:.0f} / {max(stops) * 1000:.0f} ms "
            f"(one token: {step * 1000:.0f} ms)",
        ),
    ]
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"reliability_{args.base_model}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    md = [
        f"# reliability bench ({args.base_model}, {args.aborted} dropped streams of up to "
        f"{args.abort_max_tokens} tokens)",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
        "Each dropped stream is read until its first content token, then the client hangs up; the next "
        "request is sent at once. Measured in one run on the real app (uvicorn, embedded engine, raw SSE).",
        "",
    ]
    stem.with_suffix(".md").write_text("\n".join(md), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
