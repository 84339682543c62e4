"""A job's training set: validated file → validation split → paraphrase augmentation → retrieval curriculum.

Pure data work (no model): the recipe passes the encoder's token counter, so every token limit is checked
with the tokenizer the model trains with, and the retrieval ``search`` function (built by the caller from a
knowledge base; training never opens one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from training.data import DataError, DataReport, Messages, auto_split, last_user_question, validate_file
from training.raft import RAFT_UPDATES, Search


@dataclass
class TrainingSet:
    report: DataReport  # the training file's validation report (sha256, knowledge records)
    train: list[Messages]
    valid: list[Messages]
    split: str  # how the validation set was made (printed, recorded in imprint.json)
    questions: list[str]  # what the adapter knows by heart: the user questions it was trained on
    notes: list[str] = field(default_factory=list)  # lines worth printing


def _key(messages: Messages) -> str:
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def build_training_set(
    training_file: Path,
    *,
    count_tokens: Callable[[Messages], tuple[int, int]],
    max_tokens: int,
    seed: int,
    validation_file: Path | None = None,
    augment: int = 0,
    reading_examples: int = 0,
    updates: int = RAFT_UPDATES,
    search: Search | None = None,
    kb_name: str | None = None,
) -> TrainingSet:
    """Validate the files (raising :class:`DataError` with every problem), then build the sets."""
    from training.augment import augment_examples, paraphrase

    report = validate_file(training_file, count_tokens=count_tokens, max_tokens=max_tokens)
    if not report.ok:
        raise DataError(report)
    notes = [f"  {issue}" for issue in report.issues if issue.severity != "error"]
    train = [e.messages for e in report.examples]
    if validation_file is not None:
        vreport = validate_file(validation_file, count_tokens=count_tokens, max_tokens=max_tokens)
        if not vreport.ok:
            raise DataError(vreport)
        valid, how = [e.messages for e in vreport.examples], f"validation file {validation_file}"
    else:
        split = auto_split(train, seed=seed, paraphrase=lambda q, n: paraphrase(q, n, seed=seed))
        train, valid, how = split.train, split.valid, split.how
    if augment:
        before = len(train)
        # Validation paraphrases must not leak into training: skip any augmented copy equal to one of them.
        valid_keys = {_key(v) for v in valid}
        augmented = augment_examples(train, augment, seed=seed + 1)
        train = augmented[:before] + [e for e in augmented[before:] if _key(e) not in valid_keys]
        notes.append(f"  --augment {augment}: {before} → {len(train)} examples (rule-based paraphrases)")
    # What the adapter knows by heart: the user questions it was trained on (with paraphrases), not the
    # synthetic reading examples added below.
    questions = list(dict.fromkeys(q for q in (last_user_question(m) for m in train) if q))
    if search is not None or reading_examples:
        # training.raft returns the COMPLETE training set (the user's pairs repeated + RAFT + curriculum).
        from training.raft import build_retrieval_examples

        before = len(train)
        train = build_retrieval_examples(
            train, search=search, n_reading=reading_examples, seed=seed, updates=updates
        )
        notes.append(
            f"  retrieval curriculum (kb={kb_name or ('given search' if search else None)}, "
            f"reading={reading_examples}): {before} → {len(train)}"
        )
    return TrainingSet(report, train, valid, how, questions, notes)
