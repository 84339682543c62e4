"""Token ids + labels, and the two batch layouts. Packing must be EXACT: the loss of a packed batch equals the
token-weighted loss of its examples one by one (tiny-phi3 here; gemma3-270m with its sliding-window layers in
the slow test)."""

from __future__ import annotations

import pytest

from training.encoding import (
    IGNORE,
    Encoded,
    Encoder,
    best_rows,
    encode_example,
    pack_batch,
    pack_rows,
    pad_batch,
    token_batches,
    token_counter,
)
from training.loss import answer_loss

QA = [{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "老大是哥哥JIM。"}]
CHATS = [
    QA,
    [
        {"role": "user", "content": "kitty平时喜欢做什么?"},
        {"role": "assistant", "content": "kitty喜欢睡在沙发上。"},
    ],
    [
        {"role": "user", "content": "What is the price of the lamp? " * 12},
        {"role": "assistant", "content": "It costs 199 yuan."},
    ],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "I don't know."}],
    [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2 is longer."},
    ],
]


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


def test_encoder_tokenizes_each_example_once_and_counts_like_token_counter(tiny, tiny_phi3_base) -> None:
    _, tok = tiny
    calls = []

    def counting_tok(text, **kw):
        calls.append(text)
        return tok(text, **kw)

    counting_tok.bos_token = tok.bos_token
    enc = Encoder(counting_tok, tiny_phi3_base.chat_template, max_len=8)
    total, trained = enc.count(QA)
    n = len(calls)
    row = enc(QA)
    assert len(calls) == n  # the ids came from the cache
    assert (total, trained) == token_counter(tok, tiny_phi3_base.chat_template)(QA)
    assert len(row) == 8 and total > 8 and row.trained == sum(1 for x in row.labels if x != IGNORE)


def test_pack_rows_balances_and_best_rows_trades_padding_for_attention() -> None:
    assert pack_rows([5, 3, 8, 2], 2) == [[2, 3], [0, 1]]  # 10 and 8 tokens
    assert pack_rows([5, 3], 4) == [[0], [1]]  # no empty rows
    rows = pack_rows([4] * 7, 3)
    assert sorted(i for r in rows for i in r) == list(range(7)) and [len(r) for r in rows] == [3, 2, 2]
    assert best_rows([20, 30, 25]) == [[1, 2, 0]]  # uneven short examples: one row, no padding
    assert len(best_rows([300] * 8)) == 8  # equal lengths: a row each, no padding, least attention
    assert best_rows([600, *[100] * 6]) == [[0], [1, 2, 3, 4, 5, 6]]  # two full rows of 600
    assert len(best_rows([150, 100, 80], attention_tokens=10**12)) == 1  # free attention: never pad


def test_pack_batch_layout() -> None:
    a = Encoded([1, 2, 3], [IGNORE, 2, 3])
    b = Encoded([4, 5], [4, 5])  # a first token with a label: packing must drop that label
    batch = pack_batch([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[IGNORE, 2, 3, IGNORE, 5]]
    assert "attention_mask" not in batch and batch["tokens"] == 5
    two = pack_batch([a, b, Encoded([6, 7, 8, 9], [IGNORE] * 4)], pad_id=0, n_rows=2)
    assert two["input_ids"].tolist() == [[6, 7, 8, 9, 0], [1, 2, 3, 4, 5]]
    assert two["position_ids"].tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]
    assert two["tokens"] == 9 and two["input_ids"].numel() == 10
    padded = pad_batch([a, b], pad_id=0)
    assert padded["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]] and padded["tokens"] == 5
    rounded = pack_batch([a, b], pad_id=0, multiple_of=4)  # a GPU's row width: a multiple of 64
    assert rounded["input_ids"].tolist() == [[1, 2, 3, 4, 5, 0, 0, 0]]
    assert rounded["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 0, 0]]
    assert rounded["labels"].tolist() == [[IGNORE, 2, 3, IGNORE, 5, IGNORE, IGNORE, IGNORE]]
    assert rounded["tokens"] == 5


def test_token_batches_fill_a_budget_in_order() -> None:
    a, b, c = Encoded([1] * 3, [IGNORE] * 3), Encoded([2] * 2, [2] * 2), Encoded([3] * 9, [3] * 9)
    assert token_batches([a, b, c, a], 5) == [[a, b], [c], [a]]  # longer than the budget: a batch of its own
    assert token_batches([], 5) == []


def _one_by_one(model, rows) -> tuple[float, int, int]:
    import torch

    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for r in rows:
            loss, c, n = answer_loss(model, pad_batch([r], pad_id=0), reduction="sum")
            total, correct, count = total + float(loss), correct + c, count + n
    return total / count, correct, count


def assert_packing_is_exact(model, rows, pad_id: int) -> None:
    import torch

    ref, ref_correct, ref_count = _one_by_one(model, rows)
    with torch.no_grad():
        # one row; several rows with padding; the chosen split; rows rounded up to 64 tokens as on a GPU
        for n_rows, multiple in ((1, 1), (2, 1), (3, 1), (None, 1), (2, 64)):
            batch = pack_batch(rows, pad_id, n_rows=n_rows, multiple_of=multiple)
            loss, correct, count = answer_loss(model, batch)
            assert count == ref_count and correct == ref_correct
            assert abs(float(loss) - ref) < 1e-5, (n_rows, multiple, float(loss), ref)
        loss, correct, count = answer_loss(model, pad_batch(rows, pad_id))
        assert abs(float(loss) - ref) < 1e-5 and count == ref_count


def test_packed_and_padded_loss_equal_one_by_one_tiny_phi3(tiny, tiny_phi3_base) -> None:
    model, tok = tiny
    rows = Encoder(tok, tiny_phi3_base.chat_template, max_len=512).all(CHATS)
    assert len({len(r) for r in rows}) == len(rows)  # different lengths: packing really mixes them
    assert_packing_is_exact(model, rows, tok.pad_token_id)


def test_packed_gradients_equal_one_by_one_tiny_phi3(tiny, tiny_phi3_base) -> None:
    import torch

    model, tok = tiny
    rows = Encoder(tok, tiny_phi3_base.chat_template, max_len=512).all(CHATS)
    params = [p for p in model.parameters() if p.is_floating_point()]

    def grads(batches) -> list[torch.Tensor]:
        model.zero_grad()
        count = sum(answer_loss(model, b)[2] for b in batches)
        for b in batches:
            loss, _, _ = answer_loss(model, b, reduction="sum")
            (loss / count).backward()
        return [p.grad.clone() for p in params]

    for p in params:
        p.requires_grad_(True)
    try:
        one = grads([pad_batch([r], 0) for r in rows])
        packed = grads([pack_batch(rows, tok.pad_token_id, n_rows=2)])
    finally:
        for p in params:
            p.requires_grad_(False)
        model.zero_grad()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(one, packed, strict=True))


@pytest.mark.slow
def test_packing_is_exact_on_gemma3_with_sliding_window_layers() -> None:
    from training.models import load_base_model, resolve_base_model

    base = resolve_base_model("gemma3-270m")
    model, tok = load_base_model(base, device="cpu")
    assert model.config.sliding_window < 600  # the long example below crosses the sliding window
    long_chat = [
        {"role": "user", "content": "星光台灯的价格是多少? " + "资料:星光台灯售价199元,库存12件。" * 45},
        {"role": "assistant", "content": "星光台灯的价格是199元。"},
    ]
    rows = Encoder(tok, base.chat_template, max_len=2048).all([*CHATS, long_chat])
    assert max(len(r) for r in rows) > model.config.sliding_window
    assert_packing_is_exact(model, rows, tok.pad_token_id)
