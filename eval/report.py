"""What ``imprint eval`` shows and saves: per-mode, per-kind accuracy (with the routes that answered), the
tables, a bar chart, and the JSON report that keeps every raw answer so anyone can re-score it.

    from eval.report import summarize, print_tables, plot_summary
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from training.text import is_abstention


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
    route: str = ""
    reason: str = ""
    fields: dict[str, bool] | None = None  # per-field correctness of a JSON answer (object ``expected``)


def sent_wrong(correct: bool, answer: str) -> bool:
    """A wrong answer someone would read: a miss that is not "I don't know"."""
    return not correct and not is_abstention(answer)


def summarize(results: list[Result]) -> dict[str, Any]:
    """{mode: {kind: {"correct", "total", "accuracy", "wrong_sent", "prompt_tokens", "completion_tokens",
    "routes"}}}. ``wrong_sent``: the misses that are not "I don't know" — wrong answers someone would read."""
    out: dict[str, Any] = {}
    routes: dict[tuple[str, str], Counter[str]] = {}
    for r in results:
        for kind in (r.kind, "all"):
            cell = out.setdefault(r.mode, {}).setdefault(
                kind, {"correct": 0, "total": 0, "wrong_sent": 0, "prompt_tokens": 0, "completion_tokens": 0}
            )
            cell["correct"] += int(r.correct)
            cell["wrong_sent"] += int(sent_wrong(r.correct, r.answer))
            cell["total"] += 1
            cell["prompt_tokens"] += r.prompt_tokens
            cell["completion_tokens"] += r.completion_tokens
            routes.setdefault((r.mode, kind), Counter())[r.route] += 1
            for name, ok in (r.fields or {}).items():
                f = cell.setdefault("fields", {}).setdefault(name, {"correct": 0, "total": 0})
                f["correct"] += int(ok)
                f["total"] += 1
    for mode, kinds in out.items():
        for kind, cell in kinds.items():
            cell["accuracy"] = round(cell["correct"] / cell["total"], 4)
            cell["routes"] = dict(routes[(mode, kind)])
            for f in cell.get("fields", {}).values():
                f["accuracy"] = round(f["correct"] / f["total"], 4)
    return out


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
    overview = Table(title="accuracy by kind (routes that answered)")
    overview.add_column("kind")
    for m in modes:
        overview.add_column(m)
    for kind in [*kinds, "all"]:
        cells = []
        for m in modes:
            cell = summary[m].get(kind)
            if cell is None:
                cells.append("")
                continue
            routes = ", ".join(
                f"{r} {n}" for r, n in sorted(cell["routes"].items()) if r not in ("base", "rag")
            )
            cells.append(f"{cell['correct']}/{cell['total']}" + (f" ({routes})" if routes else ""))
        overview.add_row(kind, *cells)
    overview.add_row("wrong answers sent", *[str(summary[m]["all"]["wrong_sent"]) for m in modes])
    console.print(overview)
    fields = list(dict.fromkeys(f for m in modes for f in summary[m]["all"].get("fields", {})))
    if fields:
        per_field = Table(title="JSON answers: accuracy per field (all kinds)")
        per_field.add_column("field")
        for m in modes:
            per_field.add_column(m)
        for f in fields:
            cells = [summary[m]["all"].get("fields", {}).get(f) for m in modes]
            per_field.add_row(f, *[f"{c['correct']}/{c['total']}" if c else "" for c in cells])
        console.print(per_field)


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


def print_calibration(calibration: dict[str, Any]) -> None:
    """One line per adapter: the thresholds calibrated on its own data, and what it still misses."""
    for name, c in calibration.items():
        sem = c.get("semantic") or {}
        semantic = (
            f"semantic match ≥ {sem['threshold']} (positives passing {sem['positives_passing']:.0%}, "
            f"negatives {sem['negatives_passing']:.0%})"
            if sem.get("threshold") is not None
            else f"semantic match ≥ {c.get('semantic_fixed')} (not calibrated)"
        )
        print(
            f"calibration {name}: {semantic}; adapter confidence ≥ {c.get('confidence')}; "
            f"memorised {c.get('memorized')}" + (f", still missed: {c['missed']}" if c.get("missed") else ""),
            file=sys.stderr,
        )


def build_report(
    questions: Path, adapter: Path | None, modes: list[str], results: list[Result]
) -> dict[str, Any]:
    return {
        "questions": str(questions),
        "adapter": str(adapter) if adapter else None,
        "modes": modes,
        "summary": summarize(results),
        "results": [asdict(r) for r in results],
    }
