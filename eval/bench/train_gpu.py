"""GPU training throughput: LoRA on a random Phi-4-shaped model (bf16, activation checkpointing), tokens/s,
MFU and peak memory. Never downloads anything: the model is built from microsoft/phi-4's config values.

    python -m eval.bench.train_bench --gpu [--batch 4 --seq 1024 --steps 10 --layers N]

Writes ``eval/bench/results/train_bench_gpu.json``. Needs CUDA; the CPU benchmark is ``train_bench`` itself.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

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


def gpu_bench(batch: int, seq: int, steps: int, layers: int | None) -> dict[str, Any]:
    """LoRA r=16 on every projection of a random Phi-4-shaped model in bf16; tokens/s and MFU."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Phi3Config, Phi3ForCausalLM

    from training.loss import answer_loss
    from training.models import TARGET_MODULES

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


def run_gpu(batch: int, seq: int, steps: int, layers: int | None, out: Path) -> dict[str, Any]:
    result = gpu_bench(batch, seq, steps, layers)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result
