"""Training kernels: Liger on a CUDA GPU when installed, PyTorch's everywhere else, and a config that says
exactly why ``kernels: liger`` cannot run here. (The fused path itself runs in eval/bench/gpu_checks.sh on a
GPU: its loss against PyTorch's is in eval/bench/results/train_bench_gpu.md.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError
from training.kernels import fused_ce, kernel_problems, liger_installed, resolve_kernels, use_kernels
from training.train_config import TrainConfig

pytestmark = pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="asserts the CPU behaviour; the GPU one is benchmarked"
)


def test_auto_takes_pytorch_kernels_without_a_gpu_and_marks_nothing() -> None:
    from transformers import Phi3Config, Phi3ForCausalLM

    assert resolve_kernels("auto") == resolve_kernels("none") == "none"
    config = Phi3Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = Phi3ForCausalLM(config)
    assert use_kernels(model, "none") is model
    assert not fused_ce(model)


def test_liger_without_a_gpu_is_refused_with_the_reason_and_the_fix(family_train_file: Path) -> None:
    problems = kernel_problems("liger")
    assert "kernels: liger needs a CUDA GPU (Triton kernels) — use kernels: auto or none here" in problems
    assert any("pip install 'imprint[gpu]'" in p for p in problems) is not liger_installed()
    assert kernel_problems("auto") == kernel_problems("none") == []
    with pytest.raises(ConfigError, match=r"kernels: liger needs a CUDA GPU"):
        TrainConfig.build(training_file=family_train_file, kernels="liger")
    with pytest.raises(ConfigError, match=r"kernels"):
        TrainConfig.build(training_file=family_train_file, kernels="triton")
