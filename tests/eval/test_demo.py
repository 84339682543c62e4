"""`imprint demo` end to end on the tiny Phi-3 (the same steps `make demo` runs on gemma3-270m)."""

from __future__ import annotations

import json
from pathlib import Path

from eval.demo import DEMO_STEPS, DemoConfig, run_demo


def test_demo_runs_every_step_and_writes_before_after(tmp_path: Path) -> None:
    state = run_demo(
        DemoConfig.load(
            base_model="tiny-phi3", output=tmp_path / "adapter", report_dir=tmp_path / "rep", max_new_tokens=8
        )
    )
    assert list(state.timings) == [s.__name__.removeprefix("step_") for s in DEMO_STEPS]
    report = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert set(report["summary"]) == {"base", "ft", "hybrid"}
    assert {report["summary"][m]["seen"]["total"] for m in ("base", "ft", "hybrid")} == {9}
    assert (tmp_path / "rep" / "before_after.png").stat().st_size > 0
    assert (state.adapter / "loss.png").exists() and state.adapter == tmp_path / "adapter"
