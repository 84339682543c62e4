"""The batched greedy path (``training.generation.generate_greedy_batch``, used by the memorisation check)
gives each prompt what ``generate`` gives it alone: same text, same per-token logprobs, same finish — on a
real (random tiny Phi-3) model, prompts of different lengths left-padded into one batch."""

from __future__ import annotations

import pytest

from training.generation import GenerationRequest, generate, generate_greedy_batch


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_phi3_base):
    from training.models import load_base_model

    return load_base_model(tiny_phi3_base, device="cpu")


def test_a_padded_batch_answers_each_prompt_as_it_would_alone(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    texts = ["老大是谁?", "a much longer question about the family and its cat kitty?", "hi"]
    prompts = [list(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    limits = [12, 5, 9]
    batch = generate_greedy_batch(model, tok, prompts, limits)
    for prompt, limit, got in zip(prompts, limits, batch, strict=True):
        alone = generate(model, tok, GenerationRequest(prompt_ids=prompt, max_tokens=limit, logprobs=0))
        assert got.text == alone.text
        assert got.finish_reason == alone.finish_reason
        assert got.prompt_tokens == len(prompt) and got.completion_tokens == alone.completion_tokens
        assert [t.token_id for t in got.logprobs] == [t.token_id for t in alone.logprobs]
        expected = [t.logprob for t in alone.logprobs]
        assert [t.logprob for t in got.logprobs] == pytest.approx(expected, abs=1e-4)
