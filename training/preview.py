"""A training file as the model will see it: every problem (line, field, fix), token statistics, and the first
examples rendered with the base model's chat template, cut into the segments that are trained and those that
are not — the data the web console's Data panel shows (``POST /v1/data/check``).

    from training.preview import check_and_preview
    result = check_and_preview("eval/examples/family/train.jsonl", base_model="tiny-phi3", preview=3)
    result["issues"][0]        # {"severity": "info", "line": 1, "field": "", "message": ..., "fix": ...}
    result["preview"][0]["segments"]   # [{"text": "<|im_start|>user…", "trained": False, "tokens": [..]}, ..]

Tokenization is ``training.encoding``'s (segment by segment, as training does), so the counts shown are the
counts trained.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from training.chat import split_for_loss
from training.data import DataReport, Example, validate_file

MAX_PREVIEW = 20
# Tokens listed per segment: enough to see where the labels start, not a whole document.
MAX_TOKENS_SHOWN = 400


@lru_cache(maxsize=4)
def base_tokenizer(base_model: str) -> tuple[Any, str, str]:
    """(tokenizer, chat template, resolved name) of a base model, loaded once per process."""
    from transformers import AutoTokenizer

    from training.models import resolve_base_model

    base = resolve_base_model(base_model)
    return AutoTokenizer.from_pretrained(base.path), base.chat_template, base.name


def issue_dict(issue: Any) -> dict[str, Any]:
    return {
        "severity": issue.severity,
        "line": issue.line,
        "field": issue.field,
        "message": issue.message,
        "fix": issue.fix,
        "text": str(issue),
    }


def token_pieces(tokenizer: Any, ids: list[int]) -> list[str]:
    """The text each token adds, in order (joined: the segment's text). A character split over several
    byte tokens (common in Chinese) is one piece, so no piece shows a broken "\ufffd"."""
    pieces: list[str] = []
    done = ""
    for i in range(len(ids)):
        text = tokenizer.decode(ids[: i + 1])
        if text.endswith("\ufffd") and i + 1 < len(ids):
            continue  # the rest of this character's bytes are in the next token
        pieces.append(text[len(done) :])
        done = text
    return pieces


def preview_example(example: Example, tokenizer: Any, template: str) -> dict[str, Any]:
    """One example rendered and tokenized: its segments in order, each with its tokens and whether trained."""
    bos = tokenizer.bos_token or ""
    segments = []
    for text, trained in split_for_loss(example.messages, template, bos_token=bos):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces = token_pieces(tokenizer, ids[:MAX_TOKENS_SHOWN])
        segments.append({"text": text, "trained": trained, "n_tokens": len(ids), "tokens": pieces})
    return {
        "line": example.line,
        "messages": example.messages,
        "rendered": "".join(s["text"] for s in segments),
        "segments": segments,
        "tokens": sum(s["n_tokens"] for s in segments),
        "trained_tokens": sum(s["n_tokens"] for s in segments if s["trained"]),
    }


def token_histogram(counts: list[int], bins: int = 10) -> list[dict[str, int]]:
    """Examples per token-length bucket (for a small bar chart)."""
    if not counts:
        return []
    low, high = min(counts), max(counts)
    width = max(1, -(-(high - low + 1) // bins))
    out = [{"from": low + i * width, "to": low + (i + 1) * width - 1, "examples": 0} for i in range(bins)]
    for c in counts:
        out[min(bins - 1, (c - low) // width)]["examples"] += 1
    return [b for b in out if b["from"] <= high]


def check_and_preview(
    path: str | Path, *, base_model: str, preview: int = 3, max_tokens: int = 1024
) -> dict[str, Any]:
    """``imprint data check`` as data: ``ok``, every issue, stats (tokens included), the first examples."""
    from training.encoding import token_counter

    tokenizer, template, name = base_tokenizer(base_model)
    report: DataReport = validate_file(
        path, count_tokens=token_counter(tokenizer, template), max_tokens=max_tokens
    )
    stats = report.stats()
    if report.token_counts:
        stats["tokens"]["histogram"] = token_histogram(report.token_counts)
        stats["tokens"]["limit"] = max_tokens
    shown = report.examples[: max(0, min(preview, MAX_PREVIEW))]
    return {
        "object": "data.check",
        "ok": report.ok,
        "model": name,
        "sha256": report.sha256,
        "issues": [issue_dict(i) for i in report.issues],
        "stats": stats,
        "knowledge": [{"line": line, "text": text} for line, text in report.knowledge],
        "preview": [preview_example(e, tokenizer, template) for e in shown],
    }
