"""Greedy/sampled generation for already-rendered chat prompts (batched, left-padded).

    from training.generate import generate
    generate(model, tokenizer, [render_chat(msgs, template, add_generation_prompt=True)], max_new_tokens=64)

Prompts are full strings produced by the adapter's chat template (they contain the BOS text themselves), so
they are tokenized without adding special tokens. Generation stops at EOS or any end-of-turn
token in the vocab.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from training.chat import END_OF_TURN_TOKENS


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"


def stop_token_ids(tokenizer: Any) -> list[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in END_OF_TURN_TOKENS if t in vocab)
    return sorted(ids)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    max_new_tokens: int = 128,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop: list[str] | None = None,
    seed: int | None = None,
    batch_size: int = 8,
) -> list[Generation]:
    """Complete each prompt; greedy when ``temperature == 0``. Returns one Generation per prompt, in order."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    eos = stop_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    device = next(model.parameters()).device
    results: list[Generation] = []
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
    try:
        for start in range(0, len(prompts), batch_size):
            batch = prompts[start : start + batch_size]
            enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            sampling: dict[str, Any] = (
                {"do_sample": True, "temperature": temperature, "top_p": top_p}
                if temperature > 0
                else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
            )
            with torch.inference_mode():
                out = model.generate(
                    **enc, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad, **sampling
                )
            prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
            for row, n_prompt in zip(out[:, enc["input_ids"].shape[1] :].tolist(), prompt_lens, strict=True):
                tokens: list[int] = []
                finish = "length"
                for t in row:
                    if t in eos:
                        finish = "stop"
                        break
                    tokens.append(t)
                text = tokenizer.decode(tokens, skip_special_tokens=True)
                for s in stop or []:
                    if s and s in text:
                        text, finish = text[: text.index(s)], "stop"
                results.append(
                    Generation(text.strip(), int(n_prompt), len(tokens) + (finish == "stop"), finish)
                )
    finally:
        tokenizer.padding_side = old_side
    return results
