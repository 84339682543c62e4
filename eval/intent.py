"""Measure the router's "does this request ask for a fact?" rule (``service.routing.asks_for_fact``) on a
labelled set — instructions and greetings that need no fact vs fact questions nobody can answer — and print
the confusion table (per language and overall) as markdown.

    python -m eval.intent eval/examples/intent/requests.jsonl

Each line: ``{"text": str, "label": "instruction" | "fact", "lang": "zh" | "en"}``. A fact question predicted
as an instruction is the costly error (an answer where the router should have abstained), so the table shows
both error cells.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from service.routing import asks_for_fact
from training.fileio import read_jsonl_lines


def measure(path: Path) -> tuple[Counter[tuple[str, str, str]], list[dict]]:
    """Counts of (lang, label, predicted) and the misclassified rows."""
    counts: Counter[tuple[str, str, str]] = Counter()
    wrong = []
    for _, line in read_jsonl_lines(path):
        row = json.loads(line)
        intent = asks_for_fact(row["text"])
        predicted = "fact" if intent.needs_fact else "instruction"
        counts[(row["lang"], row["label"], predicted)] += 1
        if predicted != row["label"]:
            wrong.append({**row, "predicted": predicted, "reason": intent.reason})
    return counts, wrong


def table(counts: Counter[tuple[str, str, str]]) -> str:
    lines = [
        "| lang | label | → instruction (answered, no context) | → fact (normal routing) | accuracy |",
        "|---|---|---|---|---|",
    ]
    for lang in ("zh", "en", "all"):
        for label in ("instruction", "fact"):
            cell = {
                p: sum(
                    n for (la, lb, pr), n in counts.items() if lb == label and pr == p and lang in (la, "all")
                )
                for p in ("instruction", "fact")
            }
            total = sum(cell.values())
            if total:
                lines.append(
                    f"| {lang} | {label} | {cell['instruction']} | {cell['fact']} | {cell[label]}/{total} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    counts, wrong = measure(Path(sys.argv[1] if len(sys.argv) > 1 else "eval/examples/intent/requests.jsonl"))
    print(table(counts))
    for row in wrong:
        print(f"- misclassified ({row['label']} → {row['predicted']}): {row['text']!r} — {row['reason']}")
