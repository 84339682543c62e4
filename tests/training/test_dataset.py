"""A job's training set: validation split, augmentation without leaks, the retrieval curriculum, DataError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import DataError
from training.dataset import build_training_set
from training.errors import InvalidInput


def _count(messages) -> tuple[int, int]:
    return sum(len(m["content"]) for m in messages), 1


def test_small_set_validates_on_paraphrases_and_augmentation_never_leaks_them(
    family_train_file: Path,
) -> None:
    plain = build_training_set(family_train_file, count_tokens=_count, max_tokens=1024, seed=42)
    assert len(plain.train) == 9 and len(plain.valid) == 9 and "paraphrased" in plain.split
    assert "老大是谁?" in plain.questions and plain.report.knowledge_text
    aug = build_training_set(family_train_file, count_tokens=_count, max_tokens=1024, seed=42, augment=3)
    keys = {json.dumps(v, ensure_ascii=False) for v in aug.valid}
    assert len(aug.train) > 9 and not keys & {json.dumps(t, ensure_ascii=False) for t in aug.train}
    assert any("--augment 3" in n for n in aug.notes)
    assert len(aug.questions) > len(plain.questions)  # paraphrased questions are known too


def test_retrieval_curriculum_uses_the_given_search(family_train_file: Path) -> None:
    from types import SimpleNamespace

    hits = [SimpleNamespace(text="老大是哥哥JIM。", title="家庭", heading=None)]
    calls: list[str] = []

    def search(q: str):
        calls.append(q)
        return hits

    ts = build_training_set(
        family_train_file, count_tokens=_count, max_tokens=1024, seed=1, reading_examples=4, search=search,
        kb_name="family-kb",
    )  # fmt: skip
    assert len(calls) == 9 and any("kb=family-kb" in n for n in ts.notes)
    assert len(ts.questions) == 9  # synthetic reading questions are not "known"
    assert any("家庭" in e[0]["content"] and "JIM" in e[-1]["content"] for e in ts.train)


def test_unusable_files_raise_one_data_error(tmp_path: Path, family_train_file: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}]}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        build_training_set(bad, count_tokens=_count, max_tokens=1024, seed=1)
    assert isinstance(err.value, InvalidInput) and err.value.kind == "invalid"
    assert "line 1" in str(err.value) and "line 2" in str(err.value)
    with pytest.raises(DataError, match="exceed"):  # the token limit uses the given counter
        build_training_set(family_train_file, count_tokens=_count, max_tokens=5, seed=1)
    ok = build_training_set(
        family_train_file, count_tokens=_count, max_tokens=1024, seed=1, validation_file=family_train_file
    )
    assert ok.split.startswith("validation file") and len(ok.valid) == 9
