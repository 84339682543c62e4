"""`imprint eval`: answer a questions file with several modes, score, print a table per kind, plot, report.

    imprint eval --questions eval/examples/family/questions.jsonl --adapter .imprint/adapters/family \\
        --report .imprint/reports/family.json
    imprint eval --questions Q.jsonl --adapter DIR --kb shop --modes base,ft,rag,hybrid

Every mode answers through the serving pipeline (``eval.modes``); the questions format is ``eval.questions``;
tables, plots and the JSON report (every raw answer, so anyone can re-score) are ``eval.report``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from eval.modes import EvalSession, mode_problems
from eval.questions import Question, load_questions
from eval.report import Result, build_report, plot_summary, print_calibration, print_tables
from eval.scoring import field_scores, is_correct
from training.config import ConfigError, Settings
from training.fileio import atomic_write_json

__all__ = ["ConfigError", "EvalConfig", "answer_all", "run_eval"]


class EvalConfig(Settings):
    model_config = SettingsConfigDict(env_prefix="IMPRINT_EVAL_")
    config_title: ClassVar[str] = "invalid eval config"

    questions: Path = Field(description="JSONL {question, expected[], forbidden?[], kind?, id?}")
    adapter: Path | None = Field(None, description="adapter folder (needed for ft)")
    modes: list[str] = Field(default_factory=lambda: ["base", "ft"], description="base, ft, rag, hybrid")
    kb: str | None = Field(None, description="knowledge base for rag/hybrid")
    base_model: str | None = Field(None, description="default: the adapter's base")
    report: Path | None = Field(None, description="write the JSON report here")
    plot: Path | None = Field(None, description="bar chart PNG (default next to the report)")
    max_new_tokens: int = Field(64, ge=1, description="tokens per answer")

    @field_validator("modes", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [m.strip() for m in value.split(",") if m.strip()] if isinstance(value, str) else value

    def problems(self) -> list[str]:
        from training.adapter import adapter_problems

        problems: list[str] = []
        if not self.questions.is_file():
            problems.append(f"questions: {self.questions} does not exist — pass a JSONL questions file")
        if self.adapter is not None:
            problems += [f"adapter: {p}" for p in adapter_problems(self.adapter)]
        problems += mode_problems(self.modes, adapter=self.adapter, kb=self.kb)
        return problems


def answer_all(
    cfg: EvalConfig, questions: list[Question], *, session: EvalSession | None = None
) -> list[Result]:
    """Run every mode on every question (the session's model is shared by all modes)."""
    session = session or EvalSession(
        adapter=cfg.adapter, kb=cfg.kb, base_model=cfg.base_model, max_new_tokens=cfg.max_new_tokens
    )
    return answer_modes(session, questions, cfg.modes)


def answer_modes(
    session: EvalSession, questions: list[Question], modes: list[str], *, tag: str = "eval"
) -> list[Result]:
    """Every question in every mode through ``session``, scored (per field where answers are JSON)."""
    results: list[Result] = []
    for mode in modes:
        print(f"{tag}: answering {len(questions)} questions with mode {mode} …", file=sys.stderr, flush=True)
        json_mode = any(isinstance(q.expected, dict) for q in questions)  # JSON answers: constrained decoding
        answers = session.answer(mode, [q.question for q in questions], json_mode=json_mode)
        for q, a in zip(questions, answers, strict=True):
            results.append(
                Result(
                    q.id,
                    q.kind,
                    mode,
                    q.question,
                    a.answer,
                    is_correct(a.answer, q.expected, forbidden=q.forbidden),
                    a.prompt_tokens,
                    a.completion_tokens,
                    a.route,
                    a.reason,
                    field_scores(a.answer, q.expected) if isinstance(q.expected, dict) else None,
                )
            )
    return results


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Setup → answer → score → print, plot and (optionally) save the report; returns the report dict."""
    from training.paths import imprint_home

    questions = load_questions(cfg.questions)
    session = EvalSession(
        adapter=cfg.adapter, kb=cfg.kb, base_model=cfg.base_model, max_new_tokens=cfg.max_new_tokens
    )
    results = answer_all(cfg, questions, session=session)
    report = build_report(cfg.questions, cfg.adapter, cfg.modes, results)
    print_tables(results, report["summary"])
    if cfg.adapter is not None:
        report["calibration"] = session.calibration()
        print_calibration(report["calibration"])
    plot = cfg.plot or (
        cfg.report.with_suffix(".png") if cfg.report else imprint_home() / "reports" / "eval.png"
    )
    plot_summary(report["summary"], plot)
    report["plot"] = str(plot)
    if cfg.report:
        atomic_write_json(cfg.report, report)
        print(f"report: {cfg.report}", file=sys.stderr)
    print(f"plot: {plot}", file=sys.stderr)
    return report


if __name__ == "__main__":
    run_eval(
        EvalConfig.load(
            None,
            questions=sys.argv[1],
            adapter=sys.argv[2] if len(sys.argv) > 2 else None,
            modes=["base", "ft"] if len(sys.argv) > 2 else ["base"],
        )
    )
