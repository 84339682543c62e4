"""Readers on real files: JSON Lines by the format's rules, and every unreadable file reported, not raised."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from indexing.readers import ReadError, SourceFile, read_file, read_paths
from training.errors import InvalidInput


def make_unreadable(path: Path) -> None:
    """Make ``path`` a file that exists but cannot be read. chmod 000 stops everyone but root; as root (CI
    containers), a link to /proc/self/mem is a regular file whose read fails with EIO."""
    if os.geteuid() != 0:
        path.write_text("# secret\n\ntext", encoding="utf-8")
        path.chmod(0)
    else:
        path.symlink_to("/proc/self/mem")


def test_jsonl_lines_end_at_newline_only(tmp_path: Path) -> None:
    """Defect "JSONL read as JSON Lines": str.splitlines() also broke lines at U+2028, U+2029 and U+0085,
    which json.dumps(ensure_ascii=False) writes inside strings, so a valid file gave bogus errors."""
    texts = ["第一行\u2028第二行", "para one\u2029para two", "next\x85line"]
    path = tmp_path / "faq.jsonl"
    lines = [json.dumps({"id": f"q{i}", "text": t}, ensure_ascii=False) for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs = read_file(SourceFile(tmp_path, path))
    assert [(d.id_, d.text) for d in docs] == [(f"faq.jsonl#q{i}", t) for i, t in enumerate(texts)]


def test_bad_jsonl_line_is_named_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": "a", "text": "ok \u2028 still line 1"}\n\n{"text": "no id"}\n', encoding="utf-8")
    with pytest.raises(ReadError, match=r"broken\.jsonl:3: expected a JSON object with \"id\"") as err:
        read_file(SourceFile(tmp_path, path))
    assert isinstance(err.value, InvalidInput) and err.value.code == "unreadable_document"


def test_unreadable_files_are_skipped_with_the_reason_and_the_rest_is_read(tmp_path: Path) -> None:
    """Defect "tracebacks instead of errors" (reading side): a non-UTF-8 JSONL, an unreadable file or a
    duplicate id used to raise out of the whole run."""
    root = tmp_path / "docs"
    root.mkdir()
    (root / "good.md").write_text("# Good\n\nReadable text.", encoding="utf-8")
    (root / "gbk.jsonl").write_bytes('{"id": "a", "text": "退货政策"}\n'.encode("gbk"))
    (root / "gbk.txt").write_bytes("退货政策".encode("gbk"))
    make_unreadable(root / "locked.md")
    (root / "dup.jsonl").write_text(
        '{"id": "x", "text": "one"}\n{"id": "x", "text": "two"}\n', encoding="utf-8"
    )
    (root / "notes.csv").write_text("not a supported type", encoding="utf-8")

    found = read_paths([root])
    assert sorted(d.id_ for d in found.documents) == ["dup.jsonl#x", "good.md"]
    assert [d.text for d in found.documents if d.id_ == "dup.jsonl#x"] == ["one"]
    assert found.files == 5 and found.empty_paths == []
    reasons = {Path(s.path).name: s.reason for s in found.skipped}
    assert set(reasons) == {"gbk.jsonl", "gbk.txt", "locked.md", "dup.jsonl"}
    assert "not UTF-8" in reasons["gbk.jsonl"] and "re-save the file as UTF-8" in reasons["gbk.jsonl"]
    assert "not UTF-8" in reasons["gbk.txt"]
    assert "cannot read it" in reasons["locked.md"] and "chmod +r" in reasons["locked.md"]
    assert "'dup.jsonl#x' is already used by" in reasons["dup.jsonl"]
    assert all(s.path.startswith(str(root)) and s.reason.startswith(f"{s.path}: ") for s in found.skipped)


def test_empty_folder_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "data.csv").write_text("x", encoding="utf-8")
    found = read_paths([tmp_path / "empty"])
    assert (found.documents, found.files, found.skipped) == ([], 0, [])
    assert found.empty_paths == [str((tmp_path / "empty").resolve())]
    with pytest.raises(ReadError, match=r"missing: no such file or folder") as err:
        read_paths([tmp_path / "missing"])
    assert err.value.param == "paths"
