"""The terminal side of fine-tuning jobs: `imprint train --service-url` submits to a running service (upload,
create, follow the events, print the fine-tuned model), and `imprint jobs list|show|events|cancel` read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from service.cli import app
from tests.conftest import FAMILY_TRAIN
from tests.service.test_fine_tuning_jobs import client

runner = CliRunner(env={"COLUMNS": "250"})


def test_train_on_the_service_then_the_jobs_commands(serve: Any, tmp_path: Path) -> None:
    with serve(home=tmp_path, job_poll_s=0.3) as url:
        service = ["--service-url", url]
        args = ["train", "--training-file", str(FAMILY_TRAIN), "--base-model", "tiny-phi3", "--n-epochs", "1"]
        r = runner.invoke(app, [*args, "--suffix", "cli", *service])
        assert r.exit_code == 0, r.output
        model = r.stdout.strip().splitlines()[-1]
        assert model.startswith("ft:tiny-phi3:imprint:cli:")
        assert "n_epochs = 1" in r.output and "The job has successfully completed" in r.output
        job = client(url).fine_tuning.jobs.list().data[0]
        assert job.fine_tuned_model == model

        r = runner.invoke(app, ["jobs", "list", *service])
        assert r.exit_code == 0 and job.id in r.stdout and "succeeded" in r.stdout
        r = runner.invoke(app, ["jobs", "show", job.id, *service])
        assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "succeeded"
        r = runner.invoke(app, ["jobs", "events", job.id, *service])
        lines = r.stdout.splitlines()
        assert "Validating training file" in lines[0] and "successfully completed" in lines[-1]
        r = runner.invoke(app, ["jobs", "cancel", "ftjob-doesnotexist", *service])
        assert r.exit_code == 2 and "404" in r.output and "ftjob-doesnotexist" in r.output

        r = runner.invoke(app, [*args, "--n-epochs", "-3", *service])
        assert r.exit_code == 2 and "n_epochs" in r.output
        assert len(client(url).fine_tuning.jobs.list().data) == 1  # the refused job was never queued
