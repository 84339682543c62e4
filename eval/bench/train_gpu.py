"""GPU training throughput: LoRA on a random Phi-4-shaped model (14.7B, bf16), Imprint's training step against
plain Hugging Face peft on the same model, the same examples and the same GPU in ONE run.

    python -m eval.bench.train_gpu [--layers N] [--step-tokens 4096] [--steps 6] [--variants a,b]
    python -m eval.bench.train_gpu --save-model DIR [--layers N]   # a random Phi-4-shaped model folder for a
                                                                   # real `imprint train --base-model DIR`

Never downloads anything: the model is built from microsoft/phi-4's config values with random weights.

Variants (each a training step over the same examples, LoRA r=16 on every projection, AdamW):

- ``hf-peft``: what a plain transformers + peft loop does — one example per row padded to the longest, the
  model's own loss (logits over the whole vocabulary at every position), activation checkpointing on.
- ``hf-peft-nockpt``: the same without activation checkpointing.
- ``imprint``: Imprint's step (training/loop.py) — examples packed end to end (training/encoding.py), the
  answer-only loss, Liger's fused kernels (training/kernels.py), no activation checkpointing.
- ``imprint-ckpt``: the same with activation checkpointing (the memory-lean setting).
- ``imprint-qlora``: the same with the frozen base in 4-bit NF4 (bitsandbytes), checkpointing on: the
  setting for 24 GB cards.

Work counts what the answer-only LoRA step needs per useful (non-padding) token: 4·N_linear (forward, and the
gradient to the activations; the base is frozen) + 6·N_lora + causal attention (6·layers·d·L² per example of
L tokens) + the output layer on answer tokens (4·V·d each). Recomputation under checkpointing, padding and
logits at prompt positions are not work. MFU = work / time / the GPU's dense bf16 peak (989 TFLOP/s on an
H100 or H200); also against an 8192³ bf16 matmul measured in the same run.

Writes ``eval/bench/results/train_bench_gpu.{json,md}``. Needs CUDA; the CPU benchmark is ``train_bench``.
Imports only torch, transformers, peft (+ liger-kernel, bitsandbytes) and Imprint's training package, so it
runs on a bare GPU machine (``eval/bench/gpu_checks.sh``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.bench.train_gpu_report import add_ratios, markdown
from training.encoding import token_batches

# microsoft/phi-4's config.json (a Phi3ForCausalLM): built locally with random weights, never downloaded.
PHI4_SHAPE: dict[str, Any] = {
    "vocab_size": 100352,
    "hidden_size": 5120,
    "intermediate_size": 17920,
    "num_hidden_layers": 40,
    "num_attention_heads": 40,
    "num_key_value_heads": 10,
    "max_position_embeddings": 16384,
    "original_max_position_embeddings": 16384,
    "rope_theta": 250000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": False,
    "pad_token_id": 100349,
    "bos_token_id": 100257,
    "eos_token_id": 100265,
}
# Dense bf16 peak (no sparsity) per GPU, for MFU.
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
VARIANTS: dict[str, dict[str, Any]] = {
    "hf-peft": {"packing": False, "imprint_loss": False, "kernels": "none", "ckpt": True},
    "hf-peft-nockpt": {"packing": False, "imprint_loss": False, "kernels": "none", "ckpt": False},
    "imprint": {"packing": True, "imprint_loss": True, "kernels": "liger", "ckpt": False},
    "imprint-ckpt": {"packing": True, "imprint_loss": True, "kernels": "liger", "ckpt": True},
    "imprint-qlora": {"packing": True, "imprint_loss": True, "kernels": "liger", "ckpt": True, "4bit": True},
}
LORA_R = 16


def synthetic_examples(n: int, vocab: int = 90000, seed: int = 0) -> list[Any]:
    """Chat-like examples of an Imprint --kb job: a third short QA pairs (24–120 tokens, ~40 % answer), two
    thirds reading examples (a retrieved passage + question, 256–1024 tokens, ~8 % answer)."""
    from training.encoding import IGNORE, Encoded

    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 3 == 0:
            length, answer = rng.randint(24, 120), 0.4
        else:
            length, answer = rng.randint(256, 1024), 0.08
        ids = [rng.randrange(10, vocab - 10) for _ in range(length)]
        cut = length - max(1, int(length * answer))
        out.append(Encoded(ids, [IGNORE] * cut + ids[cut:]))
    return out


def build_model(shape: dict[str, Any], four_bit: bool, device: str = "cuda") -> Any:
    """A random Phi-4-shaped model on ``device`` in bf16 (4-bit NF4 linear layers with ``four_bit``)."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    torch.manual_seed(0)
    config = Phi3Config(**shape)
    config._attn_implementation = "sdpa"
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = Phi3ForCausalLM(config)
    finally:
        torch.set_default_dtype(torch.float32)
    if four_bit:
        quantize_4bit(model, device)
    model.config.use_cache = False
    return model


def quantize_4bit(model: Any, device: str = "cuda") -> None:
    """Every decoder projection → bitsandbytes Linear4bit (NF4, bf16 compute), as ``load_in_4bit`` has it."""
    import bitsandbytes as bnb
    import torch

    for layer in model.model.layers:
        for parent in (layer.self_attn, layer.mlp):
            for name, lin in list(parent.named_children()):
                if not isinstance(lin, torch.nn.Linear):
                    continue
                q = bnb.nn.Linear4bit(
                    lin.in_features, lin.out_features, bias=False, compute_dtype=torch.bfloat16,
                    quant_type="nf4", device="meta",
                )  # fmt: skip
                q.weight = bnb.nn.Params4bit(lin.weight.data, requires_grad=False, quant_type="nf4")
                setattr(parent, name, q.to(device))
                del lin
    model.is_loaded_in_4bit = True  # peft wraps Linear4bit layers with its bnb LoRA layer
    if device == "cuda":
        torch.cuda.empty_cache()


def add_lora(model: Any) -> Any:
    from peft import LoraConfig, get_peft_model

    from training.models import TARGET_MODULES

    cfg = LoraConfig(
        r=LORA_R, lora_alpha=2 * LORA_R, target_modules=list(TARGET_MODULES["phi3"]), task_type="CAUSAL_LM"
    )
    return get_peft_model(model, cfg)


def set_checkpointing(model: Any, on: bool) -> None:
    base = model.get_base_model()
    if on:
        base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        base.enable_input_require_grads()
    else:
        base.activation_checkpointing_disable()


def make_step(
    model: Any, opt: Any, v: dict[str, Any], device: str, pad_id: int
) -> Callable[[list[Any]], dict[str, Any]]:
    """One optimizer step over a list of examples, the variant's way."""
    import torch

    from training.encoding import pack_batch, pad_batch, to_device
    from training.loss import answer_loss

    def step(rows: list[Any]) -> dict[str, Any]:
        multiple = 64 if device == "cuda" else 1  # as training/loop.py (training.kernels.row_multiple)
        batch = pack_batch(rows, pad_id, multiple_of=multiple) if v["packing"] else pad_batch(rows, pad_id)
        slots = int(batch["input_ids"].numel())
        batch = to_device({k: x for k, x in batch.items() if k != "tokens"}, device)
        if v["imprint_loss"]:  # Imprint's answer-only loss (bf16 LoRA compute inside, training/kernels.py)
            loss = answer_loss(model, batch)[0]
        else:  # the model's own loss, under autocast as the HF Trainer's bf16=True runs it
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = model(**batch, use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return {"slots": slots, "loss": float(loss.detach())}

    return step


def useful_flops(rows: list[Any], shape: dict[str, Any], n_linear: int, n_lora: int) -> float:
    d, layers = shape["hidden_size"], shape["num_hidden_layers"]
    tokens = sum(len(r) for r in rows)
    answers = sum(r.trained for r in rows)
    attention = sum(6 * layers * d * len(r) ** 2 for r in rows)
    return (4 * n_linear + 6 * n_lora) * tokens + attention + 4 * shape["vocab_size"] * d * answers


def matmul_peak_tflops(device: str = "cuda", n: int = 8192) -> float:
    """An n³ bf16 matmul's rate on ``device`` (mean of 10 after 3 warm-ups)."""
    import torch

    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(10):
        a @ b
    _sync(device)
    return 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12


def count_params(model: Any) -> tuple[int, int]:
    """(decoder linear weights, LoRA weights) — 4-bit layers counted by their logical shape."""
    import torch

    n_linear = n_lora = 0
    for name, m in model.named_modules():
        if "lora_" in name and isinstance(m, torch.nn.Linear):
            n_lora += m.in_features * m.out_features
        elif ".layers." in name and hasattr(m, "base_layer"):
            n_linear += m.base_layer.in_features * m.base_layer.out_features
    return n_linear, n_lora


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def run_variant(
    name: str, model: Any, steps: list[list[Any]], shape: dict[str, Any], warmup: int, device: str = "cuda"
) -> dict[str, Any]:
    import torch

    from training.kernels import fused_ce, use_kernels

    v = VARIANTS[name]
    if v["kernels"] == "liger" and not fused_ce(model.get_base_model()):
        use_kernels(model.get_base_model(), "liger")  # in place, once; the hf variants ran before
    set_checkpointing(model, v["ckpt"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    step = make_step(model, opt, v, device, shape["pad_token_id"])
    gc.collect()  # what an earlier variant's failure left
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        for rows in steps[:warmup]:
            step(rows)
        _sync(device)
        started = time.perf_counter()
        stats = [step(rows) for rows in steps[warmup:]]
        _sync(device)
        elapsed = time.perf_counter() - started
    except Exception as exc:  # a variant's failure (out of memory, a kernel) is a row, not the end of the run
        opt.zero_grad(set_to_none=True)
        oom = isinstance(exc, torch.cuda.OutOfMemoryError)
        return {"variant": name, **v, "error": "out of GPU memory" if oom else f"{type(exc).__name__}: {exc}"}
    timed = steps[warmup:]
    n_linear, n_lora = count_params(model)
    work = sum(useful_flops(rows, shape, n_linear, n_lora) for rows in timed)
    tokens = sum(len(r) for rows in timed for r in rows)
    slots = sum(s["slots"] for s in stats)
    opt.zero_grad(set_to_none=True)
    del opt
    return {
        "variant": name,
        **v,
        "steps": len(timed),
        "seconds": round(elapsed, 3),
        "useful_tokens": tokens,
        "padding": round(1 - tokens / slots, 3),
        "useful_tokens_per_s": round(tokens / elapsed, 1),
        "work_tflop": round(work / 1e12, 3),
        "useful_tflops": round(work / elapsed / 1e12, 3),
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" else None,
        "last_loss": round(stats[-1]["loss"], 4),
    }


def liger_parity(model: Any, rows: list[Any]) -> dict[str, Any]:
    """The answer-only loss on one packed batch with PyTorch's kernels, then with Liger's: same weights."""
    import torch

    from training.encoding import pack_batch, to_device
    from training.kernels import use_kernels
    from training.loss import answer_loss

    batch = to_device(
        {k: x for k, x in pack_batch(rows, PHI4_SHAPE["pad_token_id"]).items() if k != "tokens"}, "cuda"
    )
    with torch.no_grad():
        plain, plain_ok, n = answer_loss(model, batch)
        use_kernels(model.get_base_model(), "liger")
        fused, fused_ok, _ = answer_loss(model, batch)
    return {
        "loss_pytorch": round(float(plain), 5),
        "loss_liger": round(float(fused), 5),
        "correct_pytorch": plain_ok,
        "correct_liger": fused_ok,
        "tokens": n,
    }


def gpu_bench(
    shape: dict[str, Any], step_tokens: int, n_steps: int, variants: list[str], device: str = "cuda"
) -> dict[str, Any]:
    """Every variant over the same steps of ``shape``'s random model; the report (module doc)."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs CUDA; the CPU one is python -m eval.bench.train_bench")
    warmup = 2
    examples = synthetic_examples(step_tokens * (n_steps + warmup) // 400 + 8, shape["vocab_size"] - 300)
    steps = token_batches(examples, step_tokens)[: n_steps + warmup]
    name = torch.cuda.get_device_name() if device == "cuda" else device
    report: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": name,
        "torch": torch.__version__,
        "spec_peak_tflops": next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None),
        "matmul_n": (n := 8192 if device == "cuda" else 512),
        "matmul_peak_tflops": round(matmul_peak_tflops(device, n), 3),
        "layers": shape["num_hidden_layers"],
        "step_tokens": step_tokens,
        "lora_r": LORA_R,
        "runs": [],
    }
    for four_bit in (False, True):
        names = [n for n in variants if bool(VARIANTS[n].get("4bit")) == four_bit]
        if not names:
            continue
        model = add_lora(build_model(shape, four_bit, device))
        report.setdefault("params_b", round(sum(p.numel() for p in model.parameters()) / 1e9, 2))
        if not four_bit and any(VARIANTS[n]["kernels"] == "liger" for n in names):
            before = [n for n in names if VARIANTS[n]["kernels"] == "none"]
            for n in before:
                report["runs"].append(run_variant(n, model, steps, shape, warmup, device))
                print(json.dumps(report["runs"][-1]), flush=True)
            report["liger_parity"] = liger_parity(model, steps[0])
            print(json.dumps(report["liger_parity"]), flush=True)
            names = [n for n in names if n not in before]
        for n in names:
            report["runs"].append(run_variant(n, model, steps, shape, warmup, device))
            print(json.dumps(report["runs"][-1]), flush=True)
        del model
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
    add_ratios(report)
    return report


def run_gpu(
    layers: int | None, step_tokens: int, steps: int, variants: list[str], out: Path
) -> dict[str, Any]:
    shape = dict(PHI4_SHAPE, num_hidden_layers=layers or PHI4_SHAPE["num_hidden_layers"])
    report = gpu_bench(shape, step_tokens, steps, variants)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return report


def profile(variant: str, layers: int | None, step_tokens: int) -> str:
    """torch.profiler tables (GPU kernels, CPU ops, by time) of 2 steps of one variant after 2 warm-ups,
    and how busy the GPU was: where a step's time goes."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from training.kernels import use_kernels

    shape = dict(PHI4_SHAPE, num_hidden_layers=layers or PHI4_SHAPE["num_hidden_layers"])
    v = VARIANTS[variant]
    examples = synthetic_examples(step_tokens * 4 // 400 + 8, shape["vocab_size"] - 300)
    steps = token_batches(examples, step_tokens)
    model = add_lora(build_model(shape, bool(v.get("4bit"))))
    if v["kernels"] == "liger":
        use_kernels(model.get_base_model(), "liger")
    set_checkpointing(model, v["ckpt"])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    step = make_step(model, opt, v, "cuda", shape["pad_token_id"])
    for rows in steps[:2]:
        step(rows)
    torch.cuda.synchronize()
    started = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for rows in steps[2:4]:
            step(rows)
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    events = prof.key_averages()
    gpu = sum(e.self_device_time_total for e in events) / 1e6
    head = f"{variant}: 2 steps in {wall:.2f} s wall, GPU kernels {gpu:.2f} s ({gpu / wall:.0%} busy)"
    return "\n\n".join(
        [
            head,
            events.table(sort_by="self_device_time_total", row_limit=22, max_name_column_width=60),
            events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60),
        ]
    )


def save_phi4_shaped(target: Path, layers: int | None = None) -> Path:
    """A random Phi-4-shaped model folder (bf16 safetensors) with the locally built tokenizer and Phi-4's chat
    template: a base for a real ``imprint train --base-model`` on a GPU, since no hub is reachable."""
    from training.models import tiny_tokenizer

    tok = tiny_tokenizer()
    tok.model_max_length = PHI4_SHAPE["max_position_embeddings"]
    shape = dict(
        PHI4_SHAPE,
        num_hidden_layers=layers or PHI4_SHAPE["num_hidden_layers"],
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    import torch

    model = build_model(shape, four_bit=False, device="cuda" if torch.cuda.is_available() else "cpu")
    model.config.use_cache = True
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(target)
    tok.save_pretrained(target)
    return target


RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--layers", type=int, default=None, help="fewer layers for a smaller GPU")
    parser.add_argument("--step-tokens", type=int, default=4096, help="useful tokens per optimizer step")
    parser.add_argument(
        "--steps", type=int, default=6, help="timed steps per variant (after 2 warm-up steps)"
    )
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from the module doc")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_bench_gpu.json")
    parser.add_argument("--profile", default=None, metavar="VARIANT", help="torch.profiler tables")
    parser.add_argument(
        "--save-model", type=Path, default=None, metavar="DIR", help="write a model folder only"
    )
    args = parser.parse_args(argv)
    if args.profile:
        table = profile(args.profile, args.layers, args.step_tokens)
        print(table)
        return {"profile": table}
    if args.save_model:
        return {"saved": str(save_phi4_shaped(args.save_model, args.layers))}
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: unknown {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    return run_gpu(args.layers, args.step_tokens, args.steps, args.variants.split(","), args.out)


if __name__ == "__main__":
    main()
