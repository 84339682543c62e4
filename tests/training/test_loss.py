"""The answer-only loss against a full-logits reference, and the validation pass, on the real tiny Phi-3."""

from __future__ import annotations

import pytest

from training.encoding import IGNORE, Encoder, pack_batch, pad_batch
from training.loss import answer_loss, evaluate

QA = [{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "老大是哥哥JIM。"}]
HI = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "I don't know."}]


@pytest.fixture(scope="module")
def tiny(tiny_phi3_base):
    from training.models import load_base_model

    return load_base_model(tiny_phi3_base, device="cpu")


def test_answer_loss_equals_full_logits_cross_entropy(tiny, tiny_phi3_base) -> None:
    import torch
    import torch.nn.functional as F

    model, tok = tiny
    rows = Encoder(tok, tiny_phi3_base.chat_template, max_len=512).all([QA, HI])
    batch = pad_batch(rows, tok.pad_token_id)
    with torch.no_grad():
        loss, correct, count = answer_loss(model, batch)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    ref = F.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE,
    )
    assert count == int((batch["labels"][:, 1:] != IGNORE).sum())
    assert torch.allclose(loss, ref, atol=1e-5)
    ref_correct = (
        (logits[:, :-1].argmax(-1) == batch["labels"][:, 1:]) & (batch["labels"][:, 1:] != IGNORE)
    ).sum()
    assert correct == int(ref_correct)
    summed, _, _ = answer_loss(model, batch, reduction="sum")
    assert torch.allclose(summed, ref * count, rtol=1e-5)


def test_evaluate_is_token_weighted_and_layout_independent(tiny, tiny_phi3_base) -> None:
    import torch

    model, tok = tiny
    rows = Encoder(tok, tiny_phi3_base.chat_template, max_len=512).all([QA, HI, QA])
    with torch.no_grad():
        loss, correct, count = answer_loss(model, pack_batch(rows, tok.pad_token_id))
    for batch_size in (1, 2, 3):
        for packing in (True, False):
            vloss, vacc = evaluate(model, rows, tok.pad_token_id, batch_size=batch_size, packing=packing)
            assert abs(vloss - float(loss)) < 1e-5 and vacc == pytest.approx(correct / count)
    assert not model.training  # evaluate restores the mode it found (eval here)
