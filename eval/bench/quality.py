"""Answer-quality benchmark on company data nobody tuned for: index v1 documents → train with them (``--kb``
recipe) → ask every mode → replace the documents by v2, re-index (no retraining) → ask again.

    python -m eval.bench.quality                            # eval/examples/lumen on gemma3-270m (≈10 min)
    python -m eval.bench.quality --adapter DIR               # reuse a trained adapter (skips training)
    python -m eval.bench.quality --base-model tiny-phi3      # the pipeline only (random weights)

The example folder holds ``train.jsonl``, ``docs/v1``, ``docs/v2``, ``questions.jsonl`` (asked against v1) and
``questions_v2.jsonl`` (the table questions against v2; a v1 value in an answer is a stale answer). Writes
``eval/bench/results/quality_<example>_<base>.{json,md}``: accuracy per kind and mode, the routes (and their
reasons) that answered, stale answers after the change, and the timings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from eval.modes import EvalSession
from eval.questions import load_questions
from eval.report import Result, sent_wrong, summarize
from eval.run import answer_modes
from eval.scoring import contains_any
from training.fileio import atomic_write, atomic_write_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RESULTS = Path(__file__).resolve().parent / "results"
MODES_V1 = ["base", "ft", "rag", "hybrid"]
MODES_V2 = ["rag", "hybrid"]


def train_adapter(example: Path, kb: Any, base_model: str, out: Path, recipe: dict[str, Any]) -> Path:
    from training.train import TrainConfig, train

    cfg = TrainConfig.load(
        None,
        training_file=example / "train.jsonl",
        base_model=base_model,
        output=out,
        suffix=example.name,
        kb=kb.name,
        progress=False,
        **recipe,
    )
    return train(cfg, search=lambda q: kb.search(q, k=3))


def ask_all(session: EvalSession, questions_file: Path, modes: list[str], tag: str) -> list[Result]:
    return answer_modes(session, load_questions(questions_file), modes, tag=tag)


def stale(results: list[Result], questions_file: Path) -> dict[str, int]:
    """Answers after the change that still state a v1 value, per mode."""
    forbidden = {q.id: q.forbidden for q in load_questions(questions_file)}
    counts: Counter[str] = Counter()
    for r in results:
        counts[r.mode] += int(contains_any(r.answer, forbidden.get(r.id, [])))
    return dict(counts)


def run(
    example: Path,
    base_model: str,
    adapter: Path | None,
    recipe: dict[str, Any],
    modes: tuple[list[str], list[str]] = (MODES_V1, MODES_V2),
) -> dict[str, Any]:
    from indexing.kb import KnowledgeBase

    timings: dict[str, float] = {}
    work = Path(tempfile.mkdtemp(prefix="imprint-quality-"))
    docs = work / "docs"
    shutil.copytree(example / "docs" / "v1", docs)
    t = time.monotonic()
    kb = KnowledgeBase.open(f"quality-{example.name}", home=work / "home", create=True)
    kb.index([docs], progress=False)
    timings["index_v1"] = round(time.monotonic() - t, 1)
    if adapter is None:
        t = time.monotonic()
        adapter = train_adapter(example, kb, base_model, work / "adapter", recipe)
        timings["train"] = round(time.monotonic() - t, 1)
    session = EvalSession(adapter=adapter, kb=kb.name, kb_home=work / "home", max_new_tokens=48)
    t = time.monotonic()
    v1 = ask_all(session, example / "questions.jsonl", modes[0], "v1")
    timings["eval_v1"] = round(time.monotonic() - t, 1)
    for f in (example / "docs" / "v2").iterdir():  # the documents change; the adapter does not
        shutil.copy2(f, docs / f.name)
    t = time.monotonic()
    report = kb.index(progress=False)
    timings["reindex_v2"] = round(time.monotonic() - t, 1)
    v2 = ask_all(session, example / "questions_v2.jsonl", modes[1], "v2")
    calibration = session.calibration()
    meta = json.loads((Path(adapter) / "imprint.json").read_text(encoding="utf-8"))
    return {
        "example": example.name,
        "base_model": meta.get("base_model", base_model),
        "adapter": Path(adapter).name,
        "calibration": calibration,
        "memorization": {k: v for k, v in meta.get("memorization", {}).items() if k != "outcomes"},
        "recipe": meta.get("hyperparameters", {}),
        "reindex": {"updated": report.updated, "unchanged": report.unchanged},
        "v1": {"summary": summarize(v1), "results": [r.__dict__ for r in v1]},
        "v2": {
            "summary": summarize(v2),
            "results": [r.__dict__ for r in v2],
            "stale": stale(v2, example / "questions_v2.jsonl"),
        },
        "timings_s": timings,
    }


def wrong_sent(payload: dict[str, Any], phase: str, mode: str = "hybrid") -> list[tuple[str, str]]:
    """(id, answer) of the wrong answers ``mode`` sent in ``phase`` — a miss that is not "I don't know"."""
    return [
        (r["id"], r["answer"])
        for r in payload[phase]["results"]
        if r["mode"] == mode and sent_wrong(r["correct"], r["answer"])
    ]


def table(payload: dict[str, Any]) -> str:
    """Markdown: accuracy per kind and mode, with the routed mode's routes."""
    lines = [f"# Answer quality — {payload['example']} on {payload['base_model']}", ""]
    for phase in ("v1", "v2"):
        summary = payload[phase]["summary"]
        modes = list(summary)
        kinds = [k for k in dict.fromkeys(k for m in modes for k in summary[m]) if k != "all"] + ["all"]
        lines += [
            f"## documents {phase}",
            "",
            "| kind | " + " | ".join(modes) + " | routes (hybrid) |",
            "|---|" + "---|" * (len(modes) + 1),
        ]
        for kind in kinds:
            cells = [
                f"{summary[m][kind]['correct']}/{summary[m][kind]['total']}" if kind in summary[m] else ""
                for m in modes
            ]
            routes = summary.get("hybrid", {}).get(kind, {}).get("routes", {})
            lines.append(
                f"| {kind} | "
                + " | ".join(cells)
                + " | "
                + ", ".join(f"{r} {n}" for r, n in sorted(routes.items()))
                + " |"
            )
        lines.append("")
    for name, c in payload.get("calibration", {}).items():
        semantic = (c.get("semantic") or {}).get("threshold", c.get("semantic_fixed"))
        lines.append(
            f"Calibrated on {name}'s own data: semantic match ≥ {semantic}, "
            f"adapter confidence ≥ {c.get('confidence')}; memorised {c.get('memorized')} training questions."
        )
    lines.append(f"Stale answers after the change (a v1 value): {payload['v2']['stale']}")
    asked = sum(1 for phase in ("v1", "v2") for r in payload[phase]["results"] if r["mode"] == "hybrid")
    wrong = [w for phase in ("v1", "v2") for w in wrong_sent(payload, phase)]
    shown = "; ".join(f"{i}: {a[:40]}" for i, a in wrong)
    lines.append(f'Wrong answers sent (hybrid; a miss that is not "I don\'t know"): {len(wrong)} of {asked}')
    if wrong:
        lines[-1] += f" ({shown})"
    lines.append(f"Timings (s): {payload['timings_s']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--example", default="lumen", help="folder under eval/examples")
    ap.add_argument("--base-model", default="gemma3-270m")
    ap.add_argument("--adapter", type=Path, help="a trained adapter (skips training)")
    ap.add_argument(
        "--modes", default=",".join(MODES_V1), help="modes asked before the change (rag, hybrid after)"
    )
    ap.add_argument("--recipe", default="{}", help='TrainConfig values as JSON, e.g. {"n_epochs": 8}')
    ap.add_argument(
        "--out", type=Path, help="JSON path (default eval/bench/results/quality_<example>_<base>.json)"
    )
    args = ap.parse_args(argv)
    v1_modes = args.modes.split(",")
    v2_modes = [m for m in MODES_V2 if m in v1_modes]
    payload = run(
        EXAMPLES / args.example, args.base_model, args.adapter, json.loads(args.recipe), (v1_modes, v2_modes)
    )
    out = args.out or RESULTS / f"quality_{args.example}_{payload['base_model']}.json"
    atomic_write_json(out, payload)
    atomic_write(out.with_suffix(".md"), table(payload))
    print(table(payload))
    return payload


if __name__ == "__main__":
    main()
