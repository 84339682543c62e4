"""The validator on the seed file and on broken files: each rule, line numbers, all problems at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.data import KNOWLEDGE_NOTE, auto_split, validate_file


def _write(tmp_path: Path, lines: list[object]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x, ensure_ascii=False) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def _qa(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_seed_file_keeps_system_only_record_as_knowledge(family_train_file: Path) -> None:
    report = validate_file(family_train_file)
    assert report.ok
    assert len(report.examples) == 9
    assert [line for line, _ in report.knowledge] == [1]
    assert "哥哥JIM是老大" in report.knowledge_text
    info = [i for i in report.issues if i.severity == "info"]
    assert len(info) == 1 and info[0].line == 1 and info[0].message == KNOWLEDGE_NOTE
    # nine examples is below the recommended ten: a warning, not an error
    assert any(i.severity == "warning" and "10+" in i.message for i in report.issues)
    # training examples do not get the system text prepended
    assert all(m["role"] != "system" for e in report.examples for m in e.messages)


@pytest.mark.parametrize(
    ("line", "field", "needle"),
    [
        ("{not json", "json", "not valid JSON"),
        ("[1, 2]", "json", "not an object"),
        ({"messages": []}, "messages", "missing or empty"),
        ({"prompt": "x"}, "messages", "missing or empty"),
        (
            {"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "y"}]},
            "messages[0].role",
            "not one of",
        ),
        (
            {"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "y"}]},
            "messages[0].content",
            "must be a string",
        ),
        (
            {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "y"}]},
            "messages[0].content",
            "is empty",
        ),
        ({"messages": [{"role": "user", "content": "q"}]}, "messages", "no assistant message"),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a", "weight": 2},
                ]
            },
            "messages[1].weight",
            "must be 0 or 1",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q", "weight": 1},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "messages[0].weight",
            "only assistant",
        ),
    ],
)
def test_each_error_rule_names_line_and_field(tmp_path: Path, line: object, field: str, needle: str) -> None:
    good = [_qa(f"q{i}", f"a{i}") for i in range(10)]
    report = validate_file(_write(tmp_path, [*good[:3], line, *good[3:]]))
    errors = report.errors
    assert len(errors) == 1, errors
    assert errors[0].line == 4 and errors[0].field == field and needle in errors[0].message
    assert errors[0].fix  # every problem says how to fix it
    assert not report.ok and len(report.examples) == 10


def test_all_problems_reported_at_once_and_warnings(tmp_path: Path) -> None:
    dup = _qa("same", "same")
    lines = [
        "{bad",
        dup,
        dup,
        "",
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}]},
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": "dangling"},
            ]
        },
        {"messages": [{"role": "user", "content": "x", "extra": 1}, {"role": "assistant", "content": "y"}]},
    ]
    report = validate_file(_write(tmp_path, lines))
    by_line = {(i.line, i.severity): i.message for i in report.issues}
    assert "not valid JSON" in by_line[(1, "error")]
    assert "duplicate of line 2" in by_line[(3, "warning")]
    assert "blank line" in by_line[(4, "warning")]
    assert "weight 0" in by_line[(5, "warning")]
    assert "nothing answers" in by_line[(6, "warning")]
    assert "unknown keys" in by_line[(7, "warning")]
    assert any(i.line is None and "only 5 usable" in i.message for i in report.issues)


def test_token_limit_uses_the_counter(tmp_path: Path) -> None:
    path = _write(tmp_path, [_qa("short", "a"), _qa("long " * 50, "a")])
    report = validate_file(
        path, count_tokens=lambda m: (sum(len(x["content"]) for x in m), 1), max_tokens=100
    )
    assert [(i.line, i.field) for i in report.errors] == [(2, "messages")]
    assert "exceed" in report.errors[0].message


def test_empty_and_missing_files(tmp_path: Path) -> None:
    assert not validate_file(tmp_path / "nope.jsonl").ok
    report = validate_file(_write(tmp_path, [{"messages": [{"role": "system", "content": "facts"}]}]))
    assert not report.ok and report.knowledge_text == "facts"


def test_auto_split_never_empties_training_and_is_reproducible() -> None:
    from training.augment import paraphrase

    small = [_qa(f"老大{i}是谁?", "x")["messages"] for i in range(9)]
    split = auto_split(small, seed=1, paraphrase=lambda q, n: paraphrase(q, n, seed=1))
    assert split.train == small and len(split.valid) == 9  # every fact stays in training
    assert all(v[0]["content"] != t[0]["content"] for v, t in zip(split.valid, small, strict=True))
    seen = auto_split(small, seed=1)
    assert seen.train == small and 1 <= len(seen.valid) <= 3 and "seen" in seen.how
    big = [_qa(f"q{i}", "a")["messages"] for i in range(100)]
    a, b = auto_split(big, seed=7), auto_split(big, seed=7)
    assert a == b and len(a.valid) == 10 and len(a.train) == 90
    assert auto_split(big, seed=8).valid != a.valid
