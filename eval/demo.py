"""`imprint demo` / `make demo`: the seed's story on the embedded default model, start to finish.

    imprint demo                      # check data → eval base → train → eval adapter (alone, routed) → table
    python -m eval.demo

Each step is a function taking the shared ``DemoState``; ``DEMO_STEPS`` lists them in order so later parts
(indexing the knowledge, serving) can be appended without touching the earlier ones.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from training.config import Settings

EXAMPLES = Path(__file__).resolve().parent / "examples" / "family"

# The demo's recipe with the reading curriculum (also the end-to-end tests' and the training benchmark's): the
# set is ~4x larger and mixes two skills. 4 epochs: with 6, the best validation accuracy came at epoch 4 and
# epochs 5-6 were wasted (eval/bench/results/train_bench.md); the linear decay now ends where training does.
READING_RECIPE: dict[str, Any] = {"n_epochs": 4, "batch_size": 8, "learning_rate_multiplier": 2}


class DemoConfig(Settings):
    model_config = SettingsConfigDict(env_prefix="IMPRINT_DEMO_")
    config_title: ClassVar[str] = "invalid demo config"

    training_file: Path = EXAMPLES / "train.jsonl"
    questions: Path = EXAMPLES / "questions.jsonl"
    base_model: str | None = Field(None, description="default: the embedded gemma3-270m")
    # Two rule-based paraphrases per question: measured on two seeds, seen 9/9 and 8/9, paraphrases 7/10 and
    # 6/10 without them; seen 9/9 and 9/9, paraphrases 9/10 and 9/10 with them; ~150 s more training
    # (eval/RESULTS.md).
    augment: int = Field(2, ge=0, le=20, description="paraphrased copies per question (0: none)")
    output: Path | None = Field(None, description="default $IMPRINT_HOME/adapters/family")
    report_dir: Path | None = Field(None, description="default $IMPRINT_HOME/reports/demo")
    # The family answers are ≤ 15 tokens; the base model rambles until the limit, so a tight one keeps the
    # "before" step short without changing any verdict.
    max_new_tokens: int = Field(32, ge=1)
    # Synthetic reading examples (training/raft.py) so the adapter can also copy fresh facts out of retrieved
    # context in part 2. 0 = QA pairs only with auto hyperparameters (the seed's recipe; it cannot read).
    reading_examples: int = Field(24, ge=0, description="synthetic reading examples (0: QA pairs only)")
    serve: bool = Field(True, description="part 2: index, serve, change a fact, re-index, ask again")


@dataclass
class DemoState:
    cfg: DemoConfig
    report_dir: Path
    adapter: Path | None = None
    results: list[Any] = field(default_factory=list)  # eval.run.Result, every mode
    timings: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # for steps appended later


def _banner(text: str) -> None:
    from rich.console import Console

    Console().rule(f"[bold]{text}")


def step_check_data(state: DemoState) -> None:
    from training.data import DataError, check

    _banner("1. check the training data")
    report = check(state.cfg.training_file, base_model=state.cfg.base_model, preview=2)
    if not report.ok:
        raise DataError(report)


def _eval(state: DemoState, modes: list[str]) -> None:
    from eval.questions import load_questions
    from eval.run import EvalConfig, answer_all

    cfg = EvalConfig.build(
        questions=state.cfg.questions,
        adapter=state.adapter,
        modes=modes,
        base_model=state.cfg.base_model,
        max_new_tokens=state.cfg.max_new_tokens,
    )
    state.results.extend(answer_all(cfg, load_questions(state.cfg.questions)))


def step_eval_base(state: DemoState) -> None:
    _banner("2. evaluate the base model (before)")
    _eval(state, ["base"])


def step_train(state: DemoState) -> None:
    from training.paths import imprint_home
    from training.train import TrainConfig, train

    output = Path(state.cfg.output) if state.cfg.output else imprint_home() / "adapters" / "family"
    reading = state.cfg.reading_examples
    recipe = {"reading_examples": reading, **READING_RECIPE} if reading else {}
    how = "(+ reading curriculum)" if recipe else "(auto hyperparameters)"
    _banner(f"3. fine-tune a LoRA adapter {how}")
    cfg = TrainConfig.build(
        training_file=state.cfg.training_file,
        base_model=state.cfg.base_model,
        output=output,
        suffix="family",
        augment=state.cfg.augment,
        **recipe,
    )
    state.adapter = train(cfg)


def step_eval_adapter(state: DemoState) -> None:
    # Both: the adapter alone (what the weights learned) and the routed ``imprint`` model users call (the
    # paraphrase put in its trained wording, the answer checked, an unsure one refused).
    _banner("4. evaluate the adapter alone and routed (after)")
    _eval(state, ["ft", "hybrid"])


def step_report(state: DemoState) -> None:
    from eval.report import build_report, plot_summary, print_tables
    from training.fileio import atomic_write_json

    _banner("5. before / after")
    report = build_report(state.cfg.questions, state.adapter, ["base", "ft", "hybrid"], state.results)
    report["timings_s"] = state.timings
    print_tables(state.results, report["summary"])
    state.report_dir.mkdir(parents=True, exist_ok=True)
    plot = state.report_dir / "before_after.png"
    plot_summary(report["summary"], plot, title="family questions: base, fine-tuned, routed")
    report["plot"] = str(plot)
    atomic_write_json(state.report_dir / "report.json", report)
    state.extra["report"] = report
    print(f"adapter:        {state.adapter}")
    print(f"training curve: {state.adapter / 'loss.png' if state.adapter else '-'}")
    print(f"before/after:   {plot}")
    print(f"report (JSON):  {state.report_dir / 'report.json'}")


def step_serve(state: DemoState) -> None:
    from eval.demo_serve import run_serve_demo
    from training.paths import imprint_home

    if not state.cfg.serve or state.adapter is None:
        return
    _banner("6. serve: retrieval + adapter, a fact that changes, re-index without retraining")
    state.extra["serve"] = run_serve_demo(state.adapter, state.report_dir.parent / "serve-demo")
    print(f"knowledge base: {imprint_home() / 'kb' / 'demo-shop'}")


DEMO_STEPS: list[Callable[[DemoState], None]] = [
    step_check_data,
    step_eval_base,
    step_train,
    step_eval_adapter,
    step_report,
    step_serve,
]


def run_demo(cfg: DemoConfig | None = None) -> DemoState:
    """Run every step in ``DEMO_STEPS`` in order, timing each; returns the final state."""
    from training.paths import imprint_home

    cfg = cfg or DemoConfig.load()
    state = DemoState(cfg=cfg, report_dir=cfg.report_dir or imprint_home() / "reports" / "demo")
    for step in DEMO_STEPS:
        started = time.monotonic()
        step(state)
        state.timings[step.__name__.removeprefix("step_")] = round(time.monotonic() - started, 1)
    print("timings (s): " + ", ".join(f"{k} {v}" for k, v in state.timings.items()), file=sys.stderr)
    return state


if __name__ == "__main__":
    run_demo()
