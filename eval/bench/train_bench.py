"""Training benchmark: wall time + peak RSS of the family fine-tune on CPU; LoRA tokens/s + MFU on a GPU.

    python -m eval.bench.train_bench                 # CPU: the family fine-tune with the auto hyperparameters
    python -m eval.bench.train_bench --gpu           # GPU: LoRA on a Phi-4-shaped random model (no hub)

Prints a table and writes JSON to ``eval/bench/results/train_bench[_gpu].json`` (or ``--out``). Not a test:
numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
FAMILY = Path(__file__).resolve().parent.parent / "examples" / "family" / "train.jsonl"

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


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_bench(base_model: str | None, augment: int) -> dict[str, Any]:
    """Time the real `train()` on the family data (the same call `imprint train` makes)."""
    from training.train import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("IMPRINT_HOME", tmp)
        started = time.perf_counter()
        cfg = TrainConfig.build(
            training_file=FAMILY,
            base_model=base_model,
            output=Path(tmp) / "family",
            augment=augment,
            progress=False,
        )
        out = train(cfg)
        wall = time.perf_counter() - started
        metrics = json.loads((out / "metrics.json").read_text())
        meta = json.loads((out / "imprint.json").read_text())
    return {
        "kind": "cpu-family-finetune",
        "base_model": meta["base_model"],
        "augment": augment,
        "cpu_count": os.cpu_count(),
        "threads": __import__("torch").get_num_threads(),
        "wall_seconds_total": round(wall, 1),
        "train_loop_seconds": metrics["wall_seconds"],
        "steps": metrics["steps"],
        "seconds_per_step": round(metrics["wall_seconds"] / metrics["steps"], 3),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "final_train_loss": metrics["train_loss"],
        "valid_loss": metrics["valid_loss"],
        "hyperparameters": {
            k: meta["hyperparameters"][k] for k in ("n_epochs", "batch_size", "learning_rate")
        },
    }


def gpu_bench(batch: int, seq: int, steps: int, layers: int | None) -> dict[str, Any]:
    """LoRA r=16 on every projection of a random Phi-4-shaped model in bf16; tokens/s and MFU."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Phi3Config, Phi3ForCausalLM

    from training.models import TARGET_MODULES
    from training.train import answer_loss

    if not torch.cuda.is_available():
        raise SystemExit("--gpu needs CUDA; run the CPU benchmark without --gpu")
    shape = dict(PHI4_SHAPE, num_hidden_layers=layers or PHI4_SHAPE["num_hidden_layers"])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Phi3ForCausalLM(Phi3Config(**shape)).to(torch.bfloat16)
    model.gradient_checkpointing_enable()
    model.enable_input_require_grads()
    model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, target_modules=list(TARGET_MODULES["phi3"]), task_type="CAUSAL_LM"),
    )
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    ids = torch.randint(0, shape["vocab_size"] - 256, (batch, seq), device="cuda")
    labels = ids.clone()
    labels[:, : seq // 2] = -100  # answers are the second half, like chat data
    data = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    def step() -> None:
        loss, _, _ = answer_loss(model, data)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up (kernels, allocator)
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    tokens = batch * seq * steps
    # Frozen base: forward (2N) + activation gradients (2N) + recomputation with checkpointing (2N) ≈ 6N per
    # token; weight gradients only for LoRA (negligible). Attention: 12·layers·hidden·seq per token (fwd+bwd).
    flops_per_token = 6 * n_params + 12 * shape["num_hidden_layers"] * shape["hidden_size"] * seq
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    achieved = flops_per_token * tokens / elapsed / 1e12
    return {
        "kind": "gpu-lora-phi4-shape",
        "device": name,
        "layers": shape["num_hidden_layers"],
        "params_b": round(n_params / 1e9, 2),
        "trainable_m": round(n_train / 1e6, 1),
        "batch": batch,
        "seq": seq,
        "steps": steps,
        "seconds": round(elapsed, 2),
        "tokens_per_s": round(tokens / elapsed, 1),
        "achieved_tflops": round(achieved, 1),
        "mfu": round(achieved / peak, 4) if peak else None,
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        "flops_note": "6N+attention per token (frozen base with activation checkpointing)",
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gpu", action="store_true", help="LoRA throughput on a Phi-4-shaped random model")
    parser.add_argument("--base-model", default=None, help="CPU run: base model (default gemma3-270m)")
    parser.add_argument("--augment", type=int, default=0, help="CPU run: paraphrases per example")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--layers", type=int, default=None, help="GPU run: fewer layers for a smaller GPU")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    result = (
        gpu_bench(args.batch, args.seq, args.steps, args.layers)
        if args.gpu
        else cpu_bench(args.base_model, args.augment)
    )
    # Shared machines: the load average tells how much of the CPU this run really had.
    result.update(
        load_avg_1m=round(os.getloadavg()[0], 2),
        python=platform.python_version(),
        machine=platform.machine(),
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    out = args.out or RESULTS / ("train_bench_gpu.json" if args.gpu else "train_bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(f"→ {out}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
