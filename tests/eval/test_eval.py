"""Scoring rules, the questions loader and the JSON report of a real eval run (through the CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eval.questions import load_questions
from eval.report import Result, summarize
from eval.scoring import field_scores, is_abstention, is_correct
from service.cli import app
from tests.conftest import REPO
from training.config import ConfigError


def test_containment_is_case_and_whitespace_insensitive() -> None:
    assert is_correct("老大是哥哥JIM。", ["jim"])
    assert is_correct("The  eldest is\nJim Smith", ["jim   smith"])
    assert not is_correct("老大是哥哥Mike。", ["JIM"])
    assert is_correct("kitty喜欢睡在沙发上", ["毛线球", "沙发"])
    assert not is_correct("anything", ["", "  "])  # blank expectations never match everything


def test_empty_expected_means_abstain() -> None:
    assert is_correct("对不起,我不知道。", []) and is_correct("I don't know.", [])
    assert is_correct("I DON’T KNOW", [])
    assert not is_correct("爸爸叫JIM。", [])
    assert is_abstention("资料中没有这个信息") and not is_abstention("老大是JIM")


def test_questions_loader_reports_every_bad_line(tmp_path: Path, family_questions_file: Path) -> None:
    qs = load_questions(family_questions_file)
    kinds = {k: sum(q.kind == k for q in qs) for k in ("seen", "paraphrase", "unknown")}
    assert kinds["seen"] == 9 and kinds["paraphrase"] >= 9 and kinds["unknown"] >= 2
    assert all(q.expected == [] for q in qs if q.kind == "unknown")
    bad = tmp_path / "q.jsonl"
    bad.write_text(
        '{"question": "ok", "expected": ["a"]}\n{nope\n{"question": 3, "expected": []}\n'
        '{"question": "x", "expected": "a"}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_questions(bad)
    assert all(f"line {n}" in str(err.value) for n in (2, 3, 4)) and "line 1" not in str(err.value)


def test_family_questions_are_not_generated_by_augment(
    family_questions_file: Path, family_train_file: Path
) -> None:
    """Paraphrase accuracy would be inflated if --augment produced the eval paraphrases verbatim."""
    from training.augment import candidates
    from training.data import validate_file

    generated = {
        c for e in validate_file(family_train_file).examples for c in candidates(e.messages[0]["content"])
    }
    assert (
        not {q.question for q in load_questions(family_questions_file) if q.kind == "paraphrase"} & generated
    )


def test_forbidden_values_are_never_correct() -> None:
    """A stale value (the price before the change) makes an answer wrong even next to the new one."""
    assert is_correct("台灯149元", ["149"], forbidden=["199"])
    assert not is_correct("台灯原价199元，现价149元", ["149"], forbidden=["199"])
    assert not is_correct("不知道", [], forbidden=["不知道"])


def test_questions_loader_reads_forbidden_and_rejects_bad_ones(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text(
        '{"question": "价格?", "expected": ["149"], "forbidden": ["199"], "kind": "table"}\n',
        encoding="utf-8",
    )
    assert load_questions(f)[0].forbidden == ["199"]
    f.write_text('{"question": "价格?", "expected": ["149"], "forbidden": "199"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1: forbidden"):
        load_questions(f)


def test_cli_eval_report_shape(tiny_phi3_adapter: Path, family_questions_file: Path, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--questions",
            str(family_questions_file),
            "--adapter",
            str(tiny_phi3_adapter),
            "--report",
            str(report_path),
            "--max-new-tokens",
            "8",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text(encoding="utf-8"))
    n = len(load_questions(family_questions_file))
    assert len(report["results"]) == 2 * n
    keys = {
        "id",
        "kind",
        "mode",
        "question",
        "answer",
        "correct",
        "prompt_tokens",
        "completion_tokens",
        "route",
    }
    assert all(keys <= set(r) for r in report["results"])
    assert {r["mode"] for r in report["results"]} == {"base", "ft"}
    assert {r["route"] for r in report["results"]} == {"base", "adapter"}  # answered by the serving pipeline
    assert all(0 < r["completion_tokens"] <= 9 and r["prompt_tokens"] > 0 for r in report["results"])
    # the summary is re-computable from the raw answers
    assert report["summary"] == summarize([Result(**r) for r in report["results"]])
    assert Path(report["plot"]).exists()


def test_cli_eval_rejects_bad_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "--questions", str(tmp_path / "none.jsonl"), "--modes", "ft,zzz"]
    )
    assert result.exit_code == 2
    assert "questions" in result.output and "adapter" in result.output and "zzz" in result.output


@pytest.mark.slow
def test_family_adapter_before_after(family_adapter: Path, family_questions_file: Path) -> None:
    """The acceptance bar: base ≤ 2/9 and fine-tuned ≥ 8/9 on the nine training questions."""
    from eval.run import EvalConfig, answer_all

    cfg = EvalConfig.build(
        questions=family_questions_file, adapter=family_adapter, modes=["base", "ft"], max_new_tokens=32
    )
    summary = summarize(answer_all(cfg, load_questions(family_questions_file)))
    assert summary["base"]["seen"]["correct"] <= 2
    assert summary["ft"]["seen"]["correct"] >= 8
    assert summary["ft"]["paraphrase"]["correct"] > summary["base"]["paraphrase"]["correct"]


def test_json_answers_are_scored_field_by_field() -> None:
    expected = {"name": "JIM", "age": 10}
    assert field_scores('{"name": "哥哥jim", "age": 10, "x": 1}', expected) == {"name": True, "age": True}
    assert field_scores('{"name": "Mike", "age": 100}', expected) == {
        "name": False,
        "age": True,
    }  # "10" in "100"
    assert field_scores("JIM is 10", expected) == {"name": False, "age": False}  # not JSON: every field wrong
    assert field_scores('["JIM", 10]', expected) == {"name": False, "age": False}
    assert is_correct('{"name": "JIM", "age": 10}', expected) and not is_correct('{"name": "JIM"}', expected)


def test_structured_example_trains_and_evaluates_per_field(structured_adapter: Path, tmp_path: Path) -> None:
    """Chat JSONL whose answers are JSON trains the format (the fixture ran ``train()`` on it); imprint eval
    scores the JSON answers per field: the fine-tuned tiny model gets fields right, the random base none."""
    from training.data import validate_file

    questions = REPO / "eval" / "examples" / "structured" / "questions.jsonl"
    assert validate_file(REPO / "eval" / "examples" / "structured" / "train.jsonl").ok
    assert all(isinstance(q.expected, dict) for q in load_questions(questions))
    report_path = tmp_path / "structured.json"
    args = ["eval", "--questions", str(questions), "--adapter", str(structured_adapter)]
    result = CliRunner().invoke(app, [*args, "--report", str(report_path), "--max-new-tokens", "40"])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["summary"] == summarize([Result(**r) for r in report["results"]])
    fields = {m: report["summary"][m]["all"]["fields"] for m in ("base", "ft")}
    assert set(fields["ft"]) == {"name", "age", "likes"} and fields["ft"]["name"]["total"] == 6
    assert sum(f["correct"] for f in fields["ft"].values()) > sum(
        f["correct"] for f in fields["base"].values()
    )
    assert "per field" in " ".join(result.output.split())
