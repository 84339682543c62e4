"""Training benchmark: today's recipes, old (``legacy``) vs new settings, in ONE run on the same machine.

    python -m eval.bench.train_bench                          # 3 recipes × {legacy, new} (~40 min on 2 cores)
    python -m eval.bench.train_bench --recipes family --variants new
    python -m eval.bench.train_bench --profile family:legacy  # torch.profiler table of a few training steps
    python -m eval.bench.train_bench --gpu                    # GPU: Imprint vs plain HF peft (train_gpu.py)

Recipes (gemma3-270m, the embedded default model):

- ``family``: eval/examples/family/train.jsonl, auto hyperparameters (QA pairs only).
- ``demo``: the demo's recipe — family + ``--augment 2`` + 24 reading examples, ``eval.demo.READING_RECIPE``
  (legacy: 6 epochs × batch 8, lr × 2, the recipe before).
- ``kb``: eval/examples/lumen/train.jsonl with ``--kb`` (a KB built from lumen/docs/v1), auto hyperparameters.

``legacy`` reproduces the training of before this change: one example per row padded to the longest, the
~0.2 %-of-examples auto batch (1 for small sets) with ~100 example-visits of epochs, no early stopping, a
checkpoint every epoch, no memorisation check (it did not exist), plus the recipe's own ``legacy`` settings.
``new`` is the default TrainConfig. Each run is a fresh subprocess (wall time
includes model loading; peak RSS is that process's). Work = useful (non-padding) tokens × 4·N FLOP (N =
transformer parameters, embeddings excluded); the output layer on answer tokens (4·V·d per answer token) is
reported apart. MFU = work / loop time / the fp32 matmul peak measured at the start of this run. Quality:
the trained adapter's greedy answers (32 new tokens) through the serving pipeline, containment-scored —
``ft`` (the adapter alone) for ``family`` and ``demo``; for ``kb`` the routed model (``hybrid``: retrieval,
routing and the answer checks, as ``imprint serve`` answers), which also asks the table questions (fresh
facts; an answer holding a ``forbidden`` value is wrong) and the unknown ones.

Writes ``eval/bench/results/train_bench.{json,md}``. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.demo import READING_RECIPE

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EXAMPLES = HERE.parent / "examples"
FAMILY = EXAMPLES / "family"
LUMEN = EXAMPLES / "lumen"

RECIPES: dict[str, dict[str, Any]] = {
    "family": {"training_file": FAMILY / "train.jsonl", "questions": FAMILY / "questions.jsonl", "cfg": {}},
    "demo": {
        "training_file": FAMILY / "train.jsonl",
        "questions": FAMILY / "questions.jsonl",
        "cfg": {"augment": 2, "reading_examples": 24, **READING_RECIPE},
        "legacy": {"n_epochs": 6},
    },
    "kb": {
        "training_file": LUMEN / "train.jsonl",
        "questions": LUMEN / "questions.jsonl",
        "docs": LUMEN / "docs" / "v1",
        "cfg": {"kb": "lumen-bench"},
    },
}
LEGACY = {
    "reader": False,  # the --kb job learned to read in the job (64 reading examples, 2 updates per pair)
    "packing": False,
    "step_tokens": 0,
    "early_stopping_patience": 0,
    "lr_schedule": "constant",
    "checkpoint_interval_s": 0,
    "memorization_check": 0,
}
VARIANTS = {"legacy": LEGACY, "new": {}}


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best-of fp32 GEMM throughput of this machine right now (the denominator of MFU)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


# ── one run (in a child process) ───────────────────────────────────────────────────────────────────────────


def quality(adapter: Path, questions: Path, kb: str | None = None) -> dict[str, Any]:
    """The trained adapter's answers through the serving pipeline (``eval.modes``, greedy), scored per
    question kind ("kind": [correct, total]): the adapter alone (``ft``) for a QA recipe, the routed model
    (``hybrid``: retrieval, routing, answer checks) for a recipe with a knowledge base."""
    from eval.modes import EvalSession
    from eval.questions import load_questions
    from eval.report import summarize
    from eval.run import answer_modes

    mode = "hybrid" if kb else "ft"
    session = EvalSession(adapter=adapter, kb=kb, max_new_tokens=32)
    results = answer_modes(session, load_questions(questions), [mode], tag=mode)
    cells = summarize(results)[mode]
    scores = {kind: [c["correct"], c["total"]] for kind, c in cells.items() if kind != "all"}
    misses = [
        f"{r.kind}: {r.question} → {r.answer.strip()[:60]} ({r.route})" for r in results if not r.correct
    ]
    return {"mode": mode, "scores": scores, "misses": misses}


def transformer_params(base_model: str) -> tuple[int, int, int]:
    """(N transformer parameters without embeddings, vocab V, hidden d) of the base model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from training.models import resolve_base_model

    base = resolve_base_model(base_model)
    config = AutoConfig.from_pretrained(base.path)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    embed = model.get_input_embeddings().weight.numel()
    total = sum(p.numel() for n, p in model.named_parameters() if "lm_head" not in n)
    return total - embed, config.vocab_size, config.hidden_size


def run_one(
    recipe: str, variant: str, base_model: str, workdir: Path, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Train one recipe with one variant in THIS process and measure it (called in a child process)."""
    from training.threads import configure_cpu

    configure_cpu()
    os.environ["IMPRINT_HOME"] = str(workdir / "home")
    from training.train import TrainConfig, train

    spec = RECIPES[recipe]
    search, kb_seconds = None, 0.0
    if "docs" in spec:
        from indexing.kb import KnowledgeBase

        t = time.perf_counter()
        kb = KnowledgeBase.open(spec["cfg"]["kb"], create=True)
        kb.index([spec["docs"]], progress=False)
        kb_seconds = time.perf_counter() - t

        def search(q: str) -> list[Any]:
            return kb.search(q, k=3)

    cfg = TrainConfig.build(
        training_file=spec["training_file"],
        base_model=base_model,
        output=workdir / f"{recipe}-{variant}",
        suffix=f"{recipe}-{variant}",
        progress=False,
        **{**spec["cfg"], **VARIANTS[variant], **spec.get(variant, {}), **(overrides or {})},
    )
    reader = ensure_reader(cfg)  # built once per machine: timed apart from the job
    started = time.perf_counter()
    out = train(cfg, search=search)
    wall = time.perf_counter() - started
    rss = _peak_rss_mib()
    meta = json.loads((out / "imprint.json").read_text())
    m = meta["metrics"]
    q = quality(out, spec["questions"], spec["cfg"].get("kb"))
    n, vocab, hidden = transformer_params(base_model)
    trained_tokens = m["trained_tokens_per_epoch"] * m["epochs_run"]
    return {
        "recipe": recipe,
        "variant": variant,
        "base_model": base_model,
        "train_wall_s": round(wall, 1),
        "loop_s": m["loop_seconds"],
        "kb_index_s": round(kb_seconds, 1),
        "steps": m["steps"],
        "epochs_run": m["epochs_run"],
        "best_epoch": m["best_epoch"],
        "kept_epoch": m["kept_epoch"],
        "stopped_early": m["stopped_early"],
        "hyperparameters": {
            k: meta["hyperparameters"][k] for k in ("n_epochs", "batch_size", "learning_rate")
        },
        "train_examples": m["train_examples"],
        "useful_tokens": m["useful_tokens"],
        "computed_tokens": m["computed_tokens"],
        "answer_tokens": trained_tokens,
        "useful_tokens_per_s": round(m["useful_tokens"] / m["loop_seconds"], 1),
        "N": n,
        "work_tflop": round(m["useful_tokens"] * 4 * n / 1e12, 2),
        "head_tflop": round(trained_tokens * 4 * vocab * hidden / 1e12, 2),
        "peak_rss_mib": round(rss, 0),
        "valid_token_accuracy": m["valid_mean_token_accuracy"],
        "quality_mode": q["mode"],
        "quality": q["scores"],
        "misses": q["misses"],
        "reader": reader,
    }


def ensure_reader(cfg: Any) -> dict[str, Any] | None:
    """The reader a --kb job starts from (training/reader.py), found or built before the job is timed."""
    from training.loop import say
    from training.models import resolve_base_model
    from training.reader import ensure_reader as ensure
    from training.reader import uses_reader

    if not uses_reader(cfg):
        return None
    from training.train import train

    r = ensure(cfg, resolve_base_model(cfg.base_model), train=train, say=say)
    return {"key": r.key, "built_in_this_run": r.built, "build_s": r.seconds}


# ── the parent: all runs, one table ─────────────────────────────────────────────────────────────────────────


def run_child(recipe: str, variant: str, base_model: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable, "-m", "eval.bench.train_bench", "--one", f"{recipe}:{variant}",
            "--base-model", base_model, "--workdir", tmp, "--out", str(out),
        ]  # fmt: skip
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{recipe}:{variant} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(out.read_text())
        result["process_wall_s"] = round(time.perf_counter() - started, 1)
        result["log"] = [ln for ln in proc.stderr.splitlines() if ln.startswith(("  ", "data:", "early"))]
        return result


def fmt_quality(scores: dict[str, list[int]]) -> str:
    return ", ".join(f"{k} {c}/{t}" for k, (c, t) in scores.items())


def markdown(report: dict[str, Any]) -> str:
    peak = report["matmul_peak_gflops"]
    lines = [
        f"# Training benchmark ({report['measured_at']})",
        "",
        f"gemma3-270m, {report['threads']} threads on {report['cpu_count']} cores, fp32 matmul peak measured "
        f"in this run: {peak:.0f} GFLOP/s (load average {report['load_avg_start']} → "
        f"{report['load_avg_end']}).",
        "Work = useful tokens × 4·N (N = transformer params); MFU = work / loop time / peak (a row "
        "measured in an earlier run uses that run's peak).",
        "",
        "| recipe | variant | train wall s | loop s | steps | epochs (kept) | useful tokens | padding "
        "| useful tok/s | work TFLOP | MFU | peak RSS MiB | quality |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        pad = 1 - r["useful_tokens"] / max(1, r["computed_tokens"])
        mfu = r["work_tflop"] * 1e3 / r["loop_s"] / r.get("peak_gflops", peak)
        lines.append(
            f"| {r['recipe']} | {r['variant']} | {r['train_wall_s']} | {r['loop_s']} | {r['steps']} "
            f"| {r['epochs_run']} ({r['kept_epoch']}) | {r['useful_tokens']} | {pad:.0%} "
            f"| {r['useful_tokens_per_s']} | {r['work_tflop']} | {mfu:.1%} | {r['peak_rss_mib']:.0f} "
            f"| {r.get('quality_mode', 'plain')}: {fmt_quality(r['quality'])} |"
        )
    lines += ["", "Speed-up (legacy train wall / new train wall, same run):", ""]
    by = {(r["recipe"], r["variant"]): r for r in report["runs"]}
    for recipe in RECIPES:
        if (recipe, "legacy") in by and (recipe, "new") in by:
            old, new = by[recipe, "legacy"], by[recipe, "new"]
            lines.append(
                f"- {recipe}: {old['train_wall_s'] / new['train_wall_s']:.1f}× "
                f"({old['train_wall_s']} s → {new['train_wall_s']} s"
                + (f"; run of {new['measured_at']})" if "measured_at" in new else ")")
            )
    for r in report["runs"]:
        if r.get("reader"):
            reader, first = r["reader"], r["train_wall_s"] + r["reader"]["build_s"]
            lines.append(
                f"- {r['recipe']}:{r['variant']} started from the reader {reader['key']} "
                f"(training/reader.py), built once per machine in {reader['build_s']:.0f} s "
                f"({'in this run' if reader['built_in_this_run'] else 'before this run'}); the first such "
                f"job on a machine takes {first:.0f} s with it"
            )
    return "\n".join(lines) + "\n"


def profile(recipe: str, variant: str, base_model: str, steps: int = 3) -> str:
    """torch.profiler table (self CPU time) of a few training steps of ``recipe``: ``legacy`` = one example
    per step (family) or 8 padded (demo); ``new`` = 3 packed (family) or 8 packed (demo)."""
    from training.threads import configure_cpu

    configure_cpu()
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from training.augment import augment_examples
    from training.data import validate_file
    from training.encoding import Encoder, make_batch
    from training.loss import answer_loss
    from training.models import load_base_model, resolve_base_model
    from training.raft import build_retrieval_examples

    base = resolve_base_model(base_model)
    model, tok = load_base_model(base)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=list(base.target_modules), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    examples = [e.messages for e in validate_file(RECIPES[recipe]["training_file"]).examples]
    if recipe == "demo":
        examples = build_retrieval_examples(
            augment_examples(examples, 2, seed=43), search=None, n_reading=24, seed=42
        )
    rows = Encoder(tok, base.chat_template, max_len=1024).all(examples)
    per_step = 8 if recipe == "demo" else (1 if variant == "legacy" else 3)
    order = [i % len(rows) for i in range(per_step * (steps + 1))]
    batches = [
        make_batch([rows[j] for j in order[i : i + per_step]], tok.pad_token_id, packing=variant == "new")
        for i in range(0, len(order), per_step)
    ]

    def step(batch: dict[str, Any]) -> None:
        loss, _, _ = answer_loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step(batches[0])  # warm-up
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for batch in batches[1:]:
            step(batch)
    # Grouped by input shape: the output layer's matmuls ([tokens, d] × [d, 262144]) stand apart.
    return prof.key_averages(group_by_input_shape=True).table(
        sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=30, max_shapes_column_width=44
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated: family, demo, kb")
    parser.add_argument("--variants", default="legacy,new", help="comma-separated: legacy, new")
    parser.add_argument("--base-model", default="gemma3-270m")
    parser.add_argument(
        "--profile", default=None, metavar="RECIPE[:VARIANT]", help="torch.profiler table (family or demo)"
    )
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # RECIPE:VARIANT, in a child process
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="with --one: a TrainConfig override"
    )
    parser.add_argument("--gpu", action="store_true", help="eval/bench/train_gpu.py (its flags follow)")
    parser.add_argument("--out", type=Path, default=None)
    args, rest = parser.parse_known_args(argv)
    if args.gpu:
        from eval.bench.train_gpu import main as gpu_main

        return gpu_main(rest + (["--out", str(args.out)] if args.out else []))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")

    if args.one:
        recipe, variant = args.one.split(":")
        overrides = dict(kv.split("=", 1) for kv in args.set)
        result = run_one(
            recipe, variant, args.base_model, args.workdir or Path(tempfile.mkdtemp()), overrides
        )
        args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
        return result
    if args.profile:
        recipe, _, variant = args.profile.partition(":")
        table = profile(recipe, variant or "new", args.base_model)
        print(table)
        return {"profile": table}
    from training.threads import configure_cpu

    cpu = configure_cpu()
    report: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": cpu.threads,
        "load_avg_start": round(os.getloadavg()[0], 2),
        "matmul_peak_gflops": round(matmul_peak_gflops(), 1),
        "runs": [],
    }
    out = args.out or RESULTS / "train_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    recipes = args.recipes.split(",")
    if out.exists() and set(recipes) != set(RECIPES):  # a partial run keeps the other recipes' rows
        before = json.loads(out.read_text())
        kept = [r for r in before["runs"] if r["recipe"] not in recipes]
        for r in kept:  # each row keeps the time and the matmul peak of the run that measured it
            r.setdefault("measured_at", before["measured_at"])
            r.setdefault("peak_gflops", before["matmul_peak_gflops"])
        report["runs"] = kept
    for recipe in recipes:
        for variant in args.variants.split(","):
            print(f"… {recipe}:{variant}", file=sys.stderr, flush=True)
            r = run_child(recipe, variant, args.base_model)
            r.update(measured_at=report["measured_at"], peak_gflops=report["matmul_peak_gflops"])
            report["runs"].append(r)
            print(
                f"{recipe}:{variant}: {r['train_wall_s']} s, {r['steps']} steps, {fmt_quality(r['quality'])}",
                file=sys.stderr,
                flush=True,
            )
            report["load_avg_end"] = round(os.getloadavg()[0], 2)
            out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    report["matmul_peak_gflops_end"] = round(matmul_peak_gflops(), 1)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    md = markdown(report)
    out.with_suffix(".md").write_text(md)
    print(md)
    return report


if __name__ == "__main__":
    main()
