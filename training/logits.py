"""The logits processors in-process generation composes (``training.generation.generate``), each the
counterpart of what vLLM does server-side, so the embedded engine and vLLM agree token for token:

- :func:`json_grammar` — constrained decoding to a JSON Schema with xgrammar, the grammar backend vLLM uses
  by default, compiled the way vLLM compiles it (``compile_json_schema``, any whitespace, the request's stop
  tokens end the grammar);
- :class:`Penalties` — OpenAI's ``frequency_penalty``/``presence_penalty`` over the generated tokens
  (``logit -= count·frequency + (count > 0)·presence``, OpenAI's documented formula, as vLLM applies it);
- :func:`logit_bias` — OpenAI's ``logit_bias`` (token id → bias added to the logit; transformers' processor);
- :class:`RawLogprobs` — records the log-softmax of each step's logits before penalties, bias and
  temperature (vLLM's default ``raw_logprobs``, which vLLM takes after the grammar mask), so a token's
  logprob is the model's own belief about what it may write.

    from training.logits import check_json_schema
    check_json_schema('{"type": "object"}')   # raises ValueError with xgrammar's reason when unusable
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

# ── JSON grammar (xgrammar) ───────────────────────────────────────────────────────────────────────────────


MAX_WHITESPACE = 16


def check_json_schema(schema: str) -> None:
    """Raise ValueError when xgrammar cannot build a grammar from ``schema`` (bad JSON, unsupported keyword
    combination). Needs no tokenizer, so the service can refuse a bad schema before any engine sees it."""
    import xgrammar as xgr

    try:
        json.loads(schema)
        xgr.Grammar.from_json_schema(schema, any_whitespace=True)
    except Exception as exc:  # xgrammar raises RuntimeError/ValueError with the reason in the message
        raise ValueError(str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc


@lru_cache(maxsize=8)
def _compiler(tokenizer: Any, vocab_size: int, stop_ids: tuple[int, ...]) -> Any:
    import xgrammar as xgr

    info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids))
    return xgr.GrammarCompiler(info, cache_enabled=True)


def json_grammar(tokenizer: Any, vocab_size: int, stop_ids: Sequence[int], schema: str) -> Any:
    """A fresh transformers logits processor that only lets tokens through that keep the output a prefix of a
    JSON document valid under ``schema``, and allows the stop tokens only once it is complete. One per
    ``generate`` call (the matcher holds the call's state); compiled grammars are cached per schema."""
    import xgrammar as xgr

    # Whitespace is free (a model keeps the spacing it was trained on) but bounded: an unsure model can
    # otherwise emit newlines until max_tokens and never close the object. vLLM sets no bound; the two
    # engines differ only where a model would write more than this many whitespace characters in a row.
    compiled = _compiler(tokenizer, vocab_size, tuple(stop_ids)).compile_json_schema(
        schema, any_whitespace=True, max_whitespace_cnt=MAX_WHITESPACE
    )
    return xgr.contrib.hf.LogitsProcessor(compiled)


# ── sampling parameters ─────────────────────────────────────────────────────────────────────────────────


class Penalties:
    """OpenAI's frequency and presence penalties over the tokens generated so far (not the prompt)."""

    def __init__(self, prompt_len: int, frequency: float, presence: float) -> None:
        self.prompt_len, self.frequency, self.presence = prompt_len, frequency, presence

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        out = input_ids[:, self.prompt_len :]
        if out.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, out, torch.ones_like(out, dtype=scores.dtype))
        return scores - counts * self.frequency - (counts > 0).to(scores.dtype) * self.presence


def logit_bias(bias: Mapping[int, float]) -> Any:
    from transformers import SequenceBiasLogitsProcessor

    return SequenceBiasLogitsProcessor(sequence_bias=[[[int(t)], float(b)] for t, b in bias.items()])


FLOOR = -9999.0  # the logprob OpenAI and vLLM report for a token that cannot be chosen


class RawLogprobs:
    """Keeps the log-softmax of the latest step's logits; ``take(token)`` turns it into that token's logprob
    plus the ``k`` most likely tokens (-inf → -9999.0, as vLLM and OpenAI report impossible tokens). Put it
    after the grammar and before penalties/bias, where vLLM takes its "raw" logprobs."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        self.last = torch.log_softmax(scores[0].float(), dim=-1)
        return scores

    def take(self, token_id: int) -> tuple[float, tuple[tuple[int, float], ...]]:
        import torch

        lp = self.last.clamp(min=FLOOR)
        top: tuple[tuple[int, float], ...] = ()
        if self.k > 0:
            values, ids = torch.topk(lp, min(self.k, lp.shape[0]))
            top = tuple(zip(ids.tolist(), values.tolist(), strict=True))
        return float(lp[token_id]), top
