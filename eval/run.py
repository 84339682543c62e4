"""`imprint eval`: answer a questions file with several modes, score, print a table per kind, plot, report.

    imprint eval --questions eval/examples/family/questions.jsonl --adapter .imprint/adapters/family \
        --report .imprint/reports/family.json
    python -m eval.run eval/examples/family/questions.jsonl .imprint/adapters/family

Questions file: JSONL ``{"question": str, "expected": [str, ...], "kind": str?, "id": str?}``. An answer is
correct when it contains any expected string (case-insensitive, whitespace-normalised); ``expected: []`` means
the right answer is to abstain (eval.scoring). The JSON report holds every raw answer so anyone can re-score.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from eval.scoring import is_correct
from training.config import CheckedConfig, ConfigError


@dataclass(frozen=True)
class Question:
    id: str
    kind: str
    question: str
    expected: list[str]


def load_questions(path: str | Path) -> list[Question]:
    """Parse a questions file; raises ConfigError listing every bad line with the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"questions: {path} does not exist — pass a JSONL questions file")
    problems: list[str] = []
    out: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not valid JSON ({exc.msg}) — one JSON object per line")
            continue
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("question"), str)
            or not rec["question"].strip()
        ):
            problems.append(f'line {n}: question: missing or not a string — add "question": "..."')
            continue
        expected = rec.get("expected", None)
        if not isinstance(expected, list) or not all(isinstance(e, str) for e in expected):
            problems.append(f"line {n}: expected: must be a list of strings ([] = should abstain)")
            continue
        out.append(
            Question(
                str(rec.get("id") or f"q{n}"), str(rec.get("kind") or "default"), rec["question"], expected
            )
        )
    if not out and not problems:
        problems.append("file: no questions")
    if problems:
        raise ConfigError(f"{path}:\n  " + "\n  ".join(problems))
    return out


class EvalConfig(CheckedConfig):
    config_title: ClassVar[str] = "invalid eval config"

    questions: Path
    adapter: Path | None = None
    modes: list[str] = Field(default_factory=lambda: ["base", "ft"])
    kb: str | None = None
    base_model: str | None = None
    report: Path | None = None
    plot: Path | None = None  # default: next to the report, else $IMPRINT_HOME/reports/eval.png
    max_new_tokens: int = 64

    def problems(self) -> list[str]:
        from eval.modes import get_mode

        problems: list[str] = []
        if not self.questions.is_file():
            problems.append(f"questions: {self.questions} does not exist — pass a JSONL questions file")
        if "ft" in self.modes and self.adapter is None:
            problems.append("adapter: mode 'ft' needs --adapter DIR (or drop ft from --modes)")
        if self.adapter is not None and not (self.adapter / "imprint.json").exists():
            problems.append(
                f"adapter: {self.adapter} is not an Imprint adapter — train one with `imprint train`"
            )
        for m in self.modes:
            try:
                get_mode(m)
            except KeyError as exc:
                problems.append(f"modes: {exc.args[0]}")
        if self.max_new_tokens < 1:
            problems.append("max_new_tokens: must be ≥ 1")
        return problems


@dataclass
class Result:
    id: str
    kind: str
    mode: str
    question: str
    answer: str
    correct: bool
    prompt_tokens: int
    completion_tokens: int


def summarize(results: list[Result]) -> dict[str, Any]:
    """{mode: {kind: {"correct", "total", "accuracy", "completion_tokens"}, "all": {...}}}."""
    out: dict[str, Any] = {}
    for r in results:
        for kind in (r.kind, "all"):
            cell = out.setdefault(r.mode, {}).setdefault(
                kind, {"correct": 0, "total": 0, "prompt_tokens": 0, "completion_tokens": 0}
            )
            cell["correct"] += int(r.correct)
            cell["total"] += 1
            cell["prompt_tokens"] += r.prompt_tokens
            cell["completion_tokens"] += r.completion_tokens
    for kinds in out.values():
        for cell in kinds.values():
            cell["accuracy"] = round(cell["correct"] / cell["total"], 4)
    return out


def answer_all(cfg: EvalConfig, questions: list[Question], *, ctx: Any = None) -> list[Result]:
    """Run every mode on every question (ctx is shared so the base model loads once)."""
    from eval.modes import ModeContext, get_mode

    ctx = ctx or ModeContext(
        adapter=cfg.adapter, kb=cfg.kb, base_model=cfg.base_model, max_new_tokens=cfg.max_new_tokens
    )
    results: list[Result] = []
    for mode_name in cfg.modes:
        print(
            f"eval: answering {len(questions)} questions with mode {mode_name} …", file=sys.stderr, flush=True
        )
        answers = get_mode(mode_name)(ctx).answer([q.question for q in questions])
        for q, a in zip(questions, answers, strict=True):
            results.append(
                Result(
                    q.id,
                    q.kind,
                    mode_name,
                    q.question,
                    a.answer,
                    is_correct(a.answer, q.expected),
                    a.prompt_tokens,
                    a.completion_tokens,
                )
            )
    return results


def print_tables(results: list[Result], summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    modes = list(summary)
    kinds = list(dict.fromkeys(r.kind for r in results))
    for kind in kinds:
        table = Table(title=f"kind = {kind}", show_lines=False)
        table.add_column("question")
        for m in modes:
            table.add_column(m)
        by = {(r.id, r.mode): r for r in results if r.kind == kind}
        for qid in dict.fromkeys(r.id for r in results if r.kind == kind):
            first = next(r for (i, _), r in by.items() if i == qid)
            cells = []
            for m in modes:
                r = by.get((qid, m))
                short = "" if r is None else " ".join(r.answer.split())[:40]
                cells.append("" if r is None else f"{'✓' if r.correct else '✗'} {short}")
            table.add_row(first.question, *cells)
        table.add_row(
            "[b]correct[/b]",
            *[f"[b]{summary[m][kind]['correct']}/{summary[m][kind]['total']}[/b]" for m in modes],
        )
        console.print(table)
    overview = Table(title="accuracy by kind")
    overview.add_column("kind")
    for m in modes:
        overview.add_column(m)
    for kind in [*kinds, "all"]:
        overview.add_row(
            kind,
            *[
                f"{summary[m][kind]['correct']}/{summary[m][kind]['total']}" if kind in summary[m] else ""
                for m in modes
            ],
        )
    console.print(overview)


def plot_summary(summary: dict[str, Any], out: Path, title: str = "accuracy by kind") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(summary)
    kinds = list(dict.fromkeys(k for m in modes for k in summary[m]))
    width = 0.8 / max(1, len(modes))
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(kinds)), 3.8))
    for i, m in enumerate(modes):
        xs = [k + i * width for k in range(len(kinds))]
        ys = [summary[m].get(kind, {}).get("accuracy", 0) for kind in kinds]
        bars = ax.bar(xs, ys, width, label=m)
        for bar, kind in zip(bars, kinds, strict=True):
            cell = summary[m].get(kind)
            if cell:
                ax.annotate(
                    f"{cell['correct']}/{cell['total']}",
                    (bar.get_x() + width / 2, bar.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
    ax.set_xticks([k + width * (len(modes) - 1) / 2 for k in range(len(kinds))], kinds)
    ax.set(ylim=(0, 1.1), ylabel="accuracy", title=title)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a temp file next to ``path`` renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False, indent=2)
    os.replace(tmp, path)


def build_report(cfg: EvalConfig, results: list[Result]) -> dict[str, Any]:
    return {
        "questions": str(cfg.questions),
        "adapter": str(cfg.adapter) if cfg.adapter else None,
        "modes": cfg.modes,
        "summary": summarize(results),
        "results": [asdict(r) for r in results],
    }


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Setup → answer → score → print, plot and (optionally) save the report; returns the report dict."""
    from training.paths import imprint_home

    questions = load_questions(cfg.questions)
    results = answer_all(cfg, questions)
    report = build_report(cfg, results)
    print_tables(results, report["summary"])
    plot = cfg.plot or (
        cfg.report.with_suffix(".png") if cfg.report else imprint_home() / "reports" / "eval.png"
    )
    plot_summary(report["summary"], plot)
    report["plot"] = str(plot)
    if cfg.report:
        write_json(cfg.report, report)
        print(f"report: {cfg.report}", file=sys.stderr)
    print(f"plot: {plot}", file=sys.stderr)
    return report


if __name__ == "__main__":
    run_eval(
        EvalConfig.build(
            questions=sys.argv[1],
            adapter=sys.argv[2] if len(sys.argv) > 2 else None,
            modes=["base", "ft"] if len(sys.argv) > 2 else ["base"],
        )
    )
