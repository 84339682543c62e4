"""Loss masks and the answer-only loss against a full-logits reference, on the real tiny Phi-3."""

from __future__ import annotations

import pytest

from training.train import IGNORE, answer_loss, collate, encode_example

QA = [{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "老大是哥哥JIM。"}]


@pytest.fixture(scope="module")
def tiny(tiny_phi3_base):
    from training.models import load_base_model

    return load_base_model(tiny_phi3_base, device="cpu")


def test_labels_cover_exactly_the_answer_and_end_marker(tiny, tiny_phi3_base) -> None:
    _, tok = tiny
    ids, labels = encode_example(QA, tok, tiny_phi3_base.chat_template, max_len=512)
    trained = [i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE]
    assert tok.decode(trained) == "老大是哥哥JIM。<|im_end|>"
    prompt = [i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE]
    assert (
        tok.decode(prompt) == "<|im_start|>user<|im_sep|>老大是谁?<|im_end|><|im_start|>assistant<|im_sep|>"
    )
    # weight 0 → nothing trained; truncation keeps ids and labels aligned
    _, none = encode_example([QA[0], {**QA[1], "weight": 0}], tok, tiny_phi3_base.chat_template, max_len=512)
    assert all(lab == IGNORE for lab in none)
    short_ids, short_labels = encode_example(QA, tok, tiny_phi3_base.chat_template, max_len=5)
    assert len(short_ids) == len(short_labels) == 5


def test_answer_loss_equals_full_logits_cross_entropy(tiny, tiny_phi3_base) -> None:
    import torch
    import torch.nn.functional as F

    model, tok = tiny
    rows = [
        encode_example(QA, tok, tiny_phi3_base.chat_template, max_len=512),
        encode_example(
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "I don't know."}],
            tok,
            tiny_phi3_base.chat_template,
            max_len=512,
        ),
    ]
    batch = collate(rows, tok.pad_token_id)
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
