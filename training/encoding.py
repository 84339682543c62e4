"""Chat examples → token ids + labels, and labelled examples → model batches (packed or padded).

Pure functions on a tokenizer and tensors; the recipe (training/train.py), the data check (training/data.py)
and the benchmark all tokenize through here, so a token count always means the same thing.

Two batch layouts, both exact (the loss of a batch equals the token-weighted loss of its examples one by one;
``tests/training/test_encoding.py`` checks it on tiny-phi3 and gemma3-270m):

- :func:`pack_batch` (default): examples are laid end to end in a few rows of about equal length, with
  ``position_ids`` restarting at 0 for every example and NO attention mask. transformers (``masking_utils``)
  reads the restarts as packed sequences and builds a block-diagonal causal mask (also for Gemma 3's
  sliding-window layers), so no example sees another. Shorter rows are padded with one-token "sequences"
  that nothing reads; the number of rows is chosen to keep that padding and the attention spent on
  masked-out blocks small (:func:`best_rows`).
- :func:`pad_batch` (``packing: false``, the old behaviour): one example per row, padded to the longest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from training.chat import split_for_loss

IGNORE = -100  # label of a token that carries no loss (prompt, padding, weight-0 answers)
# The row length at which a packed row's attention costs as much as the rest of the model (gemma3-270m on CPU:
# one row of 960 tokens took 1.3x as long as four rows of 240, eval/RESULTS.md). Rows are split to balance
# that against padding.
ATTENTION_TOKENS = 2048

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class Encoded:
    """One example as the model sees it: token ids and labels (``IGNORE`` where no loss)."""

    ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def trained(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE)


def encode_example(
    messages: Messages, tokenizer: Any, template: str, *, max_len: int
) -> tuple[list[int], list[int]]:
    """Token ids + labels (IGNORE everywhere except trained assistant turns), segment by segment.

    Each segment is tokenized on its own, exactly as at inference (prompt tokenized, answer generated), so the
    label boundary never depends on merges across the prompt/answer edge.
    """
    bos = tokenizer.bos_token or ""
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in split_for_loss(messages, template, bos_token=bos):
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(piece)
        labels.extend(piece if trained else [IGNORE] * len(piece))
    return ids[:max_len], labels[:max_len]


class Encoder:
    """Encodes each distinct example once: the data check counts tokens with it, training reuses the ids."""

    def __init__(self, tokenizer: Any, template: str, *, max_len: int) -> None:
        self.tokenizer, self.template, self.max_len = tokenizer, template, max_len
        self._cache: dict[str, tuple[list[int], list[int]]] = {}

    def _full(self, messages: Messages) -> tuple[list[int], list[int]]:
        key = json.dumps(messages, ensure_ascii=False, sort_keys=True)
        if key not in self._cache:
            self._cache[key] = encode_example(messages, self.tokenizer, self.template, max_len=10**9)
        return self._cache[key]

    def count(self, messages: Messages) -> tuple[int, int]:
        """(total tokens, trained tokens) before truncation: the ``count_tokens`` of ``validate_file``."""
        ids, labels = self._full(messages)
        return len(ids), sum(1 for x in labels if x != IGNORE)

    def __call__(self, messages: Messages) -> Encoded:
        ids, labels = self._full(messages)
        return Encoded(ids[: self.max_len], labels[: self.max_len])

    def all(self, examples: Sequence[Messages]) -> list[Encoded]:
        return [self(m) for m in examples]


def token_counter(tokenizer: Any, template: str) -> Callable[[Messages], tuple[int, int]]:
    """(total tokens, trained tokens) of one example, tokenized exactly as training does."""
    return Encoder(tokenizer, template, max_len=10**9).count


def pad_batch(rows: Sequence[Encoded | tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """One example per row, right-padded to the longest, with an attention mask (the old layout)."""
    import torch

    pairs = [(r.ids, r.labels) if isinstance(r, Encoded) else r for r in rows]
    width = max(len(ids) for ids, _ in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(pairs):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(ids)] = 1
    tokens = sum(len(ids) for ids, _ in pairs)
    return {"input_ids": input_ids, "labels": labels, "attention_mask": mask, "tokens": tokens}


def pack_rows(lengths: Sequence[int], n_rows: int) -> list[list[int]]:
    """Example indices split into ``n_rows`` rows as evenly as possible (longest first, each into the row
    that is shortest so far; deterministic). Empty rows are dropped."""
    rows: list[list[int]] = [[] for _ in range(n_rows)]
    fill = [0] * n_rows
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        r = min(range(n_rows), key=lambda r: fill[r])
        rows[r].append(i)
        fill[r] += lengths[i]
    return [r for r in rows if r]


def best_rows(lengths: Sequence[int], attention_tokens: int = ATTENTION_TOKENS) -> list[list[int]]:
    """The row split with the least estimated compute: slots (rows × the longest row, padding included)
    × (1 + row length / ``attention_tokens``) — one long row wastes attention on masked-out blocks, many
    short rows waste padding."""

    def cost(rows: list[list[int]]) -> float:
        width = max(sum(lengths[i] for i in r) for r in rows)
        return len(rows) * width * (1 + width / attention_tokens)

    candidates = [pack_rows(lengths, n) for n in range(1, len(lengths) + 1)]
    return min(candidates, key=cost)  # the first (fewest rows) among equals


def pack_batch(
    rows: Sequence[Encoded], pad_id: int, *, n_rows: int | None = None, multiple_of: int = 1
) -> dict[str, Any]:
    """Examples packed end to end into rows (see the module doc): ``n_rows`` rows, or the count that
    :func:`best_rows` finds cheapest; the row width rounded up to ``multiple_of`` (on a GPU, so that kernels
    compiled or planned per shape — Triton, cuDNN attention — meet the same few shapes again).

    Returns ``input_ids``, ``labels``, ``position_ids`` and ``tokens`` (the useful count). No
    ``attention_mask``: its absence makes transformers derive the per-example mask from the position
    restarts. The first label of every example is IGNORE, so the last token of one example never learns to
    predict the next example.
    """
    import torch

    lengths = [len(r) for r in rows]
    groups = pack_rows(lengths, n_rows) if n_rows else best_rows(lengths)
    width = max(sum(lengths[i] for i in g) for g in groups)
    width = -(-width // multiple_of) * multiple_of
    input_ids = torch.full((len(groups), width), pad_id, dtype=torch.long)
    labels = torch.full((len(groups), width), IGNORE, dtype=torch.long)
    # Padding gets position 0 everywhere: each pad token is a sequence of its own, attending to itself only.
    positions = torch.zeros((len(groups), width), dtype=torch.long)
    for r, group in enumerate(groups):
        at = 0
        for i in group:
            n = len(rows[i])
            input_ids[r, at : at + n] = torch.tensor(rows[i].ids)
            labels[r, at : at + n] = torch.tensor(rows[i].labels)
            labels[r, at] = IGNORE
            positions[r, at : at + n] = torch.arange(n)
            at += n
    tokens = sum(lengths)
    return {"input_ids": input_ids, "labels": labels, "position_ids": positions, "tokens": tokens}


def token_batches(rows: Sequence[Encoded], budget: int) -> list[list[Encoded]]:
    """Consecutive examples grouped so each group holds at most ``budget`` tokens (an example longer than
    that is a group of its own)."""
    batches: list[list[Encoded]] = []
    used = 0
    for r in rows:
        if not batches or used + len(r) > budget:
            batches.append([])
            used = 0
        batches[-1].append(r)
        used += len(r)
    return batches


def make_batch(
    rows: Sequence[Encoded], pad_id: int, *, packing: bool, multiple_of: int = 1
) -> dict[str, Any]:
    return pack_batch(rows, pad_id, multiple_of=multiple_of) if packing else pad_batch(rows, pad_id)


def batch_tokens(batch: dict[str, Any]) -> tuple[int, int]:
    """(computed token slots, useful tokens) of a batch: the difference is padding."""
    return int(batch["input_ids"].numel()), int(batch["tokens"])


def to_device(batch: dict[str, Any], device: Any) -> dict[str, Any]:
    return {k: v.to(device) if hasattr(v, "to") else v for k, v in batch.items()}
