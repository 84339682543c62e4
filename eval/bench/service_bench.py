"""Service benchmark: router overhead vs calling the engine directly, and requests/s at 1, 4 and 16 concurrent
clients on the embedded engine (the real app on uvicorn, driven by the openai SDK).

    python -m eval.bench.service_bench                              # tiny-phi3 (fast; overhead is model-free)
    python -m eval.bench.service_bench --base-model gemma3-270m     # the embedded default model
    python -m eval.bench.service_bench --adapter DIR     # a trained adapter instead of a random one

Writes eval/bench/results/service_bench_<base>.json (+ .md) and prints the table. Goal: overhead p50 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
QUESTION = "老大是谁?"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def random_adapter(base: Any, out: Path) -> Path:
    """A real peft LoRA adapter folder (random weights) so the bench measures adapter serving, untrained."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.adapter import AdapterInfo, write_metadata

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=torch.float32)
    peft_model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, target_modules=list(base.target_modules))
    )
    peft_model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base.path).save_pretrained(out)
    write_metadata(
        out,
        AdapterInfo(
            name="bench",
            base_model=base.name,
            base_revision=base.revision,
            chat_template=base.chat_template,
            system_prompt=None,
            knowledge=[QUESTION],
            knowledge_text="",
            hyperparameters={},
            data_sha256="",
            metrics={},
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            imprint_version="bench",
        ),
    )
    return out


def router_decide_us(n: int = 2000) -> float:
    from indexing.kb import Hit
    from service.routing import AdapterKnowledge, decide

    hits = [
        Hit(
            f"星光台灯 {i} 的价格是199元。",
            0.03,
            0.7,
            3.0,
            f"d{i}",
            f"d{i}",
            "价格表",
            "价格表",
            0,
            10,
            f"c{i}",
            "2026-01-01T00:00:00+00:00",
        )
        for i in range(5)
    ]
    adapter = AdapterKnowledge(
        "bench", ["老大是谁?", "老二是谁?", "你家有几个人?"] * 5, "2026-02-01T00:00:00Z"
    )
    decide(QUESTION, hits, adapter)  # warm jieba
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        decide("星光台灯多少钱?", hits, adapter)
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-model", default="tiny-phi3")
    ap.add_argument("--adapter", type=Path, default=None)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument(
        "--requests", type=int, default=30, help="sequential requests for the overhead measurement"
    )
    ap.add_argument("--clients", default="1,4,16")
    args = ap.parse_args(argv)

    import openai
    from rich.console import Console
    from rich.table import Table

    from service.app import create_app
    from service.background import serve_in_thread
    from service.config import ServeConfig
    from service.engines.embedded import EmbeddedEngine
    from training.adapter import read_adapter
    from training.chat import render_chat
    from training.generation import GenerationRequest
    from training.models import load_base_model, resolve_base_model

    # ── setup: model, adapter, engine, app ──
    base = resolve_base_model(args.base_model)
    model, tok = load_base_model(base, device="cpu")
    tmp = Path(tempfile.mkdtemp(prefix="imprint-bench-"))
    adapter_dir = args.adapter or random_adapter(base, tmp / "bench")
    adapter = read_adapter(adapter_dir)
    engine = EmbeddedEngine(model, tok, adapters={adapter.name: adapter.path}, max_queue=256)
    app = create_app(ServeConfig(adapters=[adapter_dir], max_queue=256), engine=engine, tokenizer=tok)
    prompt = render_chat(
        [{"role": "user", "content": QUESTION}],
        adapter.chat_template,
        add_generation_prompt=True,
        bos_token=tok.bos_token or "",
    )
    ids = list(tok(prompt, add_special_tokens=False)["input_ids"])
    req = GenerationRequest(prompt_ids=ids, adapter=adapter.name, max_tokens=args.max_tokens)

    with serve_in_thread(app) as url:
        loop = asyncio.new_event_loop()
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600)

        def via_http() -> Any:
            return client.chat.completions.create(
                model="imprint",
                max_tokens=args.max_tokens,
                temperature=0,
                messages=[{"role": "user", "content": QUESTION}],
            )

        # ── work 1: overhead = (HTTP + router + prompt rendering) − engine alone, same generation ──
        via_http()
        loop.run_until_complete(engine.generate(req))  # warm both paths
        direct, routed = [], []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            loop.run_until_complete(engine.generate(req))
            direct.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            r = via_http()
            routed.append((time.perf_counter() - t0) * 1000)
        assert r.model_extra["imprint"]["route"] == "adapter", r.model_extra
        overhead = [b - a for a, b in zip(direct, routed, strict=True)]
        # The router's own work (retrieval excluded: no KB here), free of generation-time noise.
        from service.schema import ChatCompletionRequest

        pipeline = app.state.imprint["pipeline"]
        creq = ChatCompletionRequest(model="imprint", messages=[{"role": "user", "content": QUESTION}])
        plan_ms = []
        for _ in range(200):
            t0 = time.perf_counter()
            loop.run_until_complete(pipeline.plan(creq))
            plan_ms.append((time.perf_counter() - t0) * 1000)

        # ── work 2: throughput at N concurrent clients ──
        throughput = []
        for n in [int(c) for c in args.clients.split(",")]:
            total = max(2 * n, 8)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(n) as pool:
                lat = list(pool.map(lambda _: _timed(via_http), range(total)))
            wall = time.perf_counter() - t0
            throughput.append(
                {
                    "clients": n,
                    "requests": total,
                    "req_per_s": round(total / wall, 2),
                    "p50_ms": round(pct(lat, 0.5), 1),
                    "p95_ms": round(pct(lat, 0.95), 1),
                }
            )
        loop.close()

    # ── save: JSON + markdown + printed table ──
    result = {
        "base_model": args.base_model,
        "adapter": adapter.name if args.adapter else "random LoRA r=16",
        "max_tokens": args.max_tokens,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "router_decide_us_p50": round(router_decide_us(), 1),
        "engine_direct_ms_p50": round(pct(direct, 0.5), 2),
        "routed_http_ms_p50": round(pct(routed, 0.5), 2),
        "overhead_ms_p50": round(pct(overhead, 0.5), 2),
        "overhead_ms_p95": round(pct(overhead, 0.95), 2),
        "plan_ms_p50": round(pct(plan_ms, 0.5), 3),
        "overhead_goal_ms": 10.0,
        "throughput": throughput,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = f"service_bench_{args.base_model.replace('/', '_')}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    table = Table(title=f"service bench ({args.base_model}, {args.max_tokens} new tokens)")
    for col in ("measure", "value"):
        table.add_column(col)
    rows = [
        ("router decide() p50", f"{result['router_decide_us_p50']} µs"),
        ("plan (route + render + tokenize) p50", f"{result['plan_ms_p50']} ms"),
        ("engine direct p50", f"{result['engine_direct_ms_p50']} ms"),
        ("routed via HTTP p50", f"{result['routed_http_ms_p50']} ms"),
        (
            "overhead p50 / p95 (goal < 10 ms)",
            f"{result['overhead_ms_p50']} / {result['overhead_ms_p95']} ms",
        ),
    ]
    rows += [
        (f"{t['clients']} clients", f"{t['req_per_s']} req/s, p50 {t['p50_ms']} ms, p95 {t['p95_ms']} ms")
        for t in throughput
    ]
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    md = "| measure | value |\n|---|---|\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"
    (RESULTS / f"{stem}.md").write_text(f"# {table.title}\n\n{md}")
    return result


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    main()
