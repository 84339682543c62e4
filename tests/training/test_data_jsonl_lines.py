"""Training data validation on valid-but-awkward JSONL (defects 8 and 10 of the reliability issue).

Defect 8: ``json.dumps(..., ensure_ascii=False)`` writes U+2028, U+2029 and U+0085 raw inside strings; JSON
Lines ends lines at "\\n" only, so such a file is valid — ``str.splitlines()`` splits inside the string and
reports bogus errors at wrong line numbers. Defect 10: a 20 MB line used to be tokenised in full before the
token limit was checked (64 s, 4.2 GB); a line that cannot fit must be rejected without tokenising it all.
"""

from __future__ import annotations

import json
from pathlib import Path

from training.data import validate_file

SEPARATORS = ["\u2028", "\u2029", "\u0085"]


def qa(question: str, answer: str) -> str:
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return json.dumps({"messages": messages}, ensure_ascii=False)


def test_defect8_unicode_line_separators_inside_strings_are_data(tmp_path: Path) -> None:
    lines = [qa(f"问题{i}{sep}第二行", f"答案{i}{sep}more") for i, sep in enumerate(SEPARATORS * 4)]
    lines.insert(5, qa("Plain question?", "Plain answer."))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = validate_file(path)
    assert not report.errors, [str(e) for e in report.errors]
    assert [e.line for e in report.examples] == list(range(1, len(lines) + 1))
    assert report.examples[0].messages[0]["content"] == "问题0\u2028第二行"
    assert not [i for i in report.issues if i.field == "line"]  # no "blank line" warnings either


def test_defect8_errors_name_the_real_line_after_a_separator(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text(qa("a\u2028b", "c") + "\n" + "{broken\n" + qa("d", "e") + "\n", encoding="utf-8")
    report = validate_file(path)
    assert [(e.line, e.field) for e in report.errors] == [(2, "json")], [str(e) for e in report.issues]
    assert [e.line for e in report.examples] == [1, 3]


def test_defect10_a_huge_line_is_rejected_without_tokenising_all_of_it(tmp_path: Path) -> None:
    """The tokenizer may only see a bounded prefix of a line that is obviously over the token limit."""
    max_tokens = 1024
    seen: list[int] = []

    def count_tokens(messages: list[dict]) -> tuple[int, int]:
        chars = sum(len(m["content"]) for m in messages)
        seen.append(chars)
        assert chars <= 64 * max_tokens, (
            f"asked to tokenise {chars:,} characters for a {max_tokens}-token limit"
        )
        return chars, chars  # one token per character: an upper bound for any real tokenizer

    path = tmp_path / "train.jsonl"
    huge = "价格" * 1_000_000  # 2,000,000 characters, 6 MB of UTF-8
    path.write_text(qa("short?", "short.") + "\n" + qa("long?", huge) + "\n", encoding="utf-8")
    report = validate_file(path, count_tokens=count_tokens, max_tokens=max_tokens)
    errors = [(e.line, e.field) for e in report.errors]
    assert errors == [(2, "messages")], [str(e) for e in report.issues]
    assert str(max_tokens) in report.errors[0].message
    assert [e.line for e in report.examples] == [1]
