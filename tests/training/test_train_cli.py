"""`imprint train` / `imprint data check` / `imprint adapters list` on the tiny Phi-3 (real peft training):
exit codes, interrupt and resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app


def test_cli_train_then_interrupt_and_resume(
    tmp_path: Path, family_train_file: Path, imprint_home: Path
) -> None:
    runner = CliRunner()
    out = tmp_path / "resumed"
    args = [
        "train",
        "--training-file",
        str(family_train_file),
        "--base-model",
        "tiny-phi3",
        "--n-epochs",
        "2",
        "--batch-size",
        "1",
        "--output",
        str(out),
        "--suffix",
        "resumable",
    ]
    stopped = runner.invoke(app, [*args, "--stop-after-steps", "5"])
    assert stopped.exit_code == 3, stopped.output
    assert "--resume" in stopped.output and not out.exists()  # nothing half-written at --output
    job = stopped.output.split("--resume ")[1].split()[0]
    state = json.loads((imprint_home / "jobs" / job / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5
    resumed = runner.invoke(app, ["train", "--resume", job])
    assert resumed.exit_code == 0, resumed.output
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 19))  # 9 examples × 2 epochs, no step twice
    assert json.loads((out / "metrics.json").read_text())["steps"] == 18
    assert not (imprint_home / "jobs" / job / "checkpoint").exists()  # finished jobs are not resumable


def test_cli_rejects_bad_config_with_every_problem(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["train", "--training-file", str(tmp_path / "x.jsonl"), "--n-epochs", "0", "--lora-r", "100"]
    )
    assert result.exit_code == 2
    for field in ("training_file", "n_epochs", "lora_r"):
        assert field in result.output


def test_cli_data_check_exit_codes(tmp_path: Path, family_train_file: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "check", str(family_train_file), "--base-model", "tiny-phi3"])
    assert ok.exit_code == 0, ok.output
    assert "line 1" in ok.output and "kept as knowledge" in ok.output
    assert f"{family_train_file}: usable" in ok.output.replace("\n", "") and "NOT usable" not in ok.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "q"}]}\n{oops\n', encoding="utf-8")
    broken = runner.invoke(app, ["data", "check", str(bad), "--base-model", "tiny-phi3"])
    assert broken.exit_code == 2  # a problem with the input, as for every command
    assert "line 1" in broken.output and "line 2" in broken.output and "NOT usable" in broken.output


def test_cli_adapters_list_shows_the_adapter(tiny_phi3_adapter: Path) -> None:
    result = CliRunner().invoke(
        app, ["adapters", "list", "--root", str(tiny_phi3_adapter.parent)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    assert "tiny-family" in result.output and "tiny-phi3" in result.output
