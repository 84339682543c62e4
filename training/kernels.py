"""Fused GPU kernels for training: Liger's Triton RMSNorm, SwiGLU/GeGLU, RoPE, and a fused linear +
cross-entropy for the answer-only loss (no logits tensor: with Phi-4's 100k vocabulary it was the largest
activation).

    from training.kernels import use_kernels, resolve_kernels
    model = use_kernels(model, resolve_kernels("auto"))     # before LoRA is added

``kernels: auto`` (the default) takes Liger on a CUDA GPU when ``liger-kernel`` is installed
(``pip install 'imprint[gpu]'``), and plain PyTorch everywhere else; Triton does not run on the CPU.
What each choice did to speed and memory on an H200 is in eval/bench/results/train_bench_gpu.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

Kernels = Literal["auto", "liger", "none"]
_FUSED_CE = "imprint_fused_ce"  # attribute on the causal LM: answer_loss takes the fused path


def liger_installed() -> bool:
    try:
        import liger_kernel  # noqa: F401 — only whether the optional extra is there
    except ImportError:
        return False
    return True


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def kernel_problems(setting: Kernels) -> list[str]:
    """What stops ``kernels: liger`` here, each with its fix (empty for auto and none)."""
    if setting != "liger":
        return []
    problems = []
    if not liger_installed():
        problems.append(
            "kernels: liger needs liger-kernel — pip install 'imprint[gpu]' (or use kernels: auto)"
        )
    if not cuda_available():
        problems.append("kernels: liger needs a CUDA GPU (Triton kernels) — use kernels: auto or none here")
    return problems


def resolve_kernels(setting: Kernels) -> Literal["liger", "none"]:
    """auto → liger on a CUDA GPU with liger-kernel installed, else none."""
    if setting == "auto":
        return "liger" if liger_installed() and cuda_available() else "none"
    return setting


def use_kernels(model: Any, kernels: Literal["liger", "none"]) -> Any:
    """Swap the model's norms, MLP activation and RoPE for Liger's, in place, and mark it for the fused loss.
    A model type Liger does not know keeps PyTorch's kernels (and is left unmarked)."""
    if kernels == "none":
        return model
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    apply = MODEL_TYPE_TO_APPLY_LIGER_FN.get(model.config.model_type)
    if apply is None:
        return model
    # Liger's own loss replaces model.forward; Imprint's answer_loss calls the decoder itself, so it is off.
    apply(model=model, cross_entropy=False, fused_linear_cross_entropy=False)
    setattr(model, _FUSED_CE, True)
    return model


def fused_ce(causal: Any) -> bool:
    return bool(getattr(causal, _FUSED_CE, False))


def fused_answer_loss(causal: Any, hidden: Any, gold: Any, *, reduction: str) -> tuple[Any, int]:
    """Cross-entropy of the output layer on ``hidden`` (answer positions only) without the logits tensor:
    Liger computes it chunk by chunk. Returns (loss, #correct)."""
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    softcap = getattr(causal.config, "final_logit_softcapping", None)
    head = causal.get_output_embeddings()
    out = LigerFusedLinearCrossEntropyLoss(reduction=reduction, softcap=softcap, return_token_accuracy=True)(
        head.weight, hidden, gold, getattr(head, "bias", None)
    )
    correct = round(float(out.token_accuracy.detach()) * int(gold.numel())) if gold.numel() else 0
    return out.loss, correct


def gpu_memory() -> dict[str, Any]:
    """The GPU and its peak allocated memory so far (for a job's metrics); empty on the CPU."""
    if not cuda_available():
        return {}
    import torch

    return {
        "device": torch.cuda.get_device_name(),
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


def row_multiple(model: Any) -> int:
    """Packed rows are padded to a multiple of this: 64 on a GPU (few distinct shapes for Triton's and cuDNN's
    per-shape work), 1 on the CPU (no padding at all)."""
    return 64 if next(model.parameters()).device.type == "cuda" else 1


@contextmanager
def compute_precision(model: Any) -> Iterator[None]:
    """On a GPU: the LoRA matmuls in bf16 (autocast) while LoRA's weights and optimizer state stay fp32.
    Without it peft casts every activation to fp32 for the adapter: in the H200 profile that cast, the
    fp32 matmuls and their elementwise work were about a third of the GPU's time. No-op on the CPU (fp32)."""
    if next(model.parameters()).device.type != "cuda":
        yield
        return
    import torch
    from peft.helpers import disable_input_dtype_casting

    with torch.autocast("cuda", dtype=torch.bfloat16), disable_input_dtype_casting(model):
        yield
