"""The GPU training benchmark's plumbing, run for real on the CPU with a tiny Phi-4-shaped model: the same
steps through plain HF peft (padded, full-vocabulary loss) and Imprint's packed answer-only step. Liger and
4-bit need CUDA, so those two variants only run on a GPU (eval/bench/gpu_checks.sh)."""

from __future__ import annotations

from typing import Any

import pytest

from eval.bench import train_gpu
from training.encoding import IGNORE, Encoded, token_batches

TINY = dict(
    train_gpu.PHI4_SHAPE,
    vocab_size=512,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=2,
    pad_token_id=511,
    bos_token_id=1,
    eos_token_id=2,
)


def test_work_counts_useful_tokens_attention_per_example_and_the_head_on_answers_only() -> None:
    rows = [Encoded([5] * 10, [IGNORE] * 7 + [5] * 3), Encoded([6] * 4, [IGNORE] * 2 + [6] * 2)]
    d, layers, vocab = TINY["hidden_size"], TINY["num_hidden_layers"], TINY["vocab_size"]
    expected = (4 * 1000 + 6 * 10) * 14 + 6 * layers * d * (10**2 + 4**2) + 4 * vocab * d * 5
    assert train_gpu.useful_flops(rows, TINY, n_linear=1000, n_lora=10) == expected


def test_steps_fill_a_token_budget_with_consecutive_examples() -> None:
    examples = train_gpu.synthetic_examples(30, vocab=500)
    steps = token_batches(examples, 1024)
    assert [e for s in steps for e in s] == examples
    assert all(sum(len(e) for e in s) <= 1024 or len(s) == 1 for s in steps)
    assert all(0 < r.trained < len(r) and max(r.ids) < 500 for r in examples)


def test_the_benchmark_runs_both_steps_on_the_same_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_imprint = dict(train_gpu.VARIANTS["imprint"], kernels="none")  # Liger needs CUDA
    monkeypatch.setitem(train_gpu.VARIANTS, "imprint", cpu_imprint)
    report = train_gpu.gpu_bench(TINY, 1024, 2, ["hf-peft", "imprint"], device="cpu")
    runs: dict[str, Any] = {r["variant"]: r for r in report["runs"]}
    hf, imprint = runs["hf-peft"], runs["imprint"]
    assert hf["useful_tokens"] == imprint["useful_tokens"] > 1500
    assert hf["work_tflop"] == imprint["work_tflop"] > 0
    assert hf["padding"] > 0.15 > 0.1 > imprint["padding"]  # one example per row vs packed rows
    assert (hf["ckpt"], hf["imprint_loss"]) == (True, False)
    assert (imprint["ckpt"], imprint["imprint_loss"]) == (False, True)
    assert report["speedup_vs_best_hf_peft"] == round(
        imprint["useful_tokens_per_s"] / hf["useful_tokens_per_s"], 2
    )
    table = train_gpu.markdown(report)
    assert "| hf-peft | False | hf | none | True |" in table
    assert "| imprint | True | answer | none | False |" in table
