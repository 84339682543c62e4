"""The answer-only loss and the validation pass.

The decoder runs on the whole batch, but the output layer only on the hidden states that predict a labelled
token: with Gemma's 262k vocabulary the full logits tensor would cost more than the rest of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from training.encoding import IGNORE, Encoded, make_batch, to_device, token_batches
from training.kernels import compute_precision, fused_answer_loss, fused_ce


def _parts(model: Any) -> tuple[Any, Any]:
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = causal.get_decoder() if hasattr(causal, "get_decoder") else causal.model
    return causal, decoder


def answer_loss(model: Any, batch: dict[str, Any], *, reduction: str = "mean") -> tuple[Any, int, int]:
    """Cross-entropy over labelled next-token positions (mean, or sum with ``reduction="sum"``), plus
    (#correct, #tokens) for accuracy. Works on packed batches (``position_ids``, no mask) and padded ones."""
    import torch
    import torch.nn.functional as F

    causal, decoder = _parts(model)
    inputs: dict[str, Any] = {"input_ids": batch["input_ids"], "use_cache": False}
    if "position_ids" in batch:
        inputs["position_ids"] = batch["position_ids"]
    if "attention_mask" in batch:
        inputs["attention_mask"] = batch["attention_mask"]
    with compute_precision(model):
        hidden = decoder(**inputs).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    selected = hidden[:, :-1][keep]
    gold = targets[keep]
    if fused_ce(causal):  # GPU with Liger (training/kernels.py): no logits tensor at all
        loss, correct = fused_answer_loss(causal, selected, gold, reduction=reduction)
        return loss, correct, int(gold.numel())
    logits = causal.get_output_embeddings()(selected).float()
    softcap = getattr(causal.config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    loss = F.cross_entropy(logits, gold, reduction=reduction)
    correct = int((logits.argmax(-1) == gold).sum())
    return loss, correct, int(gold.numel())


EVAL_BATCH_TOKENS = 4096  # packed validation: tokens per forward pass (no activations are kept)


def eval_batches(rows: Sequence[Encoded], *, batch_size: int, packing: bool) -> list[list[Encoded]]:
    """Validation batches: packed ones hold up to EVAL_BATCH_TOKENS tokens (one pass for a small set: each
    pass re-reads every weight), padded ones ``batch_size`` examples."""
    if not packing:
        return [list(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    return token_batches(rows, EVAL_BATCH_TOKENS)


def evaluate(
    model: Any, rows: Sequence[Encoded], pad_id: int, *, batch_size: int, packing: bool = True
) -> tuple[float, float]:
    """(mean loss, token accuracy) over ``rows`` with the model in eval mode, no gradients."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for group in eval_batches(rows, batch_size=batch_size, packing=packing):
            batch = to_device(make_batch(group, pad_id, packing=packing), device)
            loss, c, n = answer_loss(model, batch, reduction="sum")
            total_loss += float(loss)
            correct += c
            count += n
    if was_training:
        model.train()
    return total_loss / max(1, count), correct / max(1, count)
