"""`imprint worker` and `imprint jobs list | show | events | cancel` — fine-tuning jobs from the terminal; the
jobs commands talk to a running service with the openai SDK (same API, same keys as any client).

    imprint worker                                  # train queued jobs (1 on CPU, one per GPU)
    imprint jobs list --service-url http://127.0.0.1:8000
    imprint jobs events ftjob-… --follow
    imprint train --training-file data.jsonl --service-url http://127.0.0.1:8000   # submit, follow, print id
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from service.cli._app import _TYPER, EXIT_INPUT, app, fail, reports_errors

jobs_app = typer.Typer(help="Fine-tuning jobs on a running Imprint service.", **_TYPER)
app.add_typer(jobs_app, name="jobs")

SERVICE_URL = typer.Option(
    "http://127.0.0.1:8000", "--service-url", envvar="IMPRINT_SERVICE_URL", help="The Imprint service."
)
API_KEY = typer.Option(None, "--api-key", envvar="IMPRINT_API_KEY", help="A key with the jobs right.")
TERMINAL = ("succeeded", "failed", "cancelled")
# The same --config option as the other commands (not imported: training_cmds imports this module).
CONFIG = typer.Option(None, "--config", help="YAML file with the command's settings (flags override it).")


@app.command("worker")
@reports_errors
def worker_cmd(
    database_url: str = typer.Option(
        None, "--database-url", help="Job store [default: $IMPRINT_HOME/jobs.db]"
    ),
    concurrency: int = typer.Option(None, "--concurrency", help="Jobs at once [default: 1, or 1 per GPU]"),
    lease_s: float = typer.Option(
        None, "--lease-s", help="Take over a job whose worker went quiet this long"
    ),
    poll_s: float = typer.Option(None, "--poll-s", help="How often an idle worker looks for a job"),
    config: Path = CONFIG,
) -> None:
    """Run job workers: take queued fine-tuning jobs from the store and train them (Ctrl-C: checkpoint and
    requeue the running job)."""
    import logging

    from service.jobs.worker import WorkerConfig, run_workers

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = WorkerConfig.load(
        config, database_url=database_url, job_concurrency=concurrency, job_lease_s=lease_s, job_poll_s=poll_s
    )
    run_workers(cfg)


def sdk(service_url: str, api_key: str | None) -> Any:
    import openai

    return openai.OpenAI(base_url=service_url.rstrip("/") + "/v1", api_key=api_key or "none", max_retries=2)


def api_errors(fn: Any) -> Any:
    """The service's OpenAI-shaped errors → their message and exit code 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import openai

        try:
            return fn(*args, **kwargs)
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            raise fail(f"{exc.status_code}: {body.get('message') or exc.message}") from None
        except openai.APIConnectionError as exc:
            raise fail(f"cannot reach the service ({exc}); is `imprint serve` running?") from None

    return wrapper


@jobs_app.command("list")
@api_errors
def jobs_list(service_url: str = SERVICE_URL, api_key: str = API_KEY, limit: int = 20) -> None:
    """The latest jobs: id, status, base model, fine-tuned model."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="fine-tuning jobs")
    for col in ("id", "status", "model", "fine_tuned_model", "created"):
        table.add_column(col)
    for job in sdk(service_url, api_key).fine_tuning.jobs.list(limit=limit).data:
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(job.created_at))
        table.add_row(job.id, job.status, job.model, job.fine_tuned_model or "", created)
    Console().print(table)


@jobs_app.command("show")
@api_errors
def jobs_show(job_id: str, service_url: str = SERVICE_URL, api_key: str = API_KEY) -> None:
    """One job as JSON (status, hyperparameters, error, result files)."""
    typer.echo(sdk(service_url, api_key).fine_tuning.jobs.retrieve(job_id).model_dump_json(indent=2))


@jobs_app.command("events")
@api_errors
def jobs_events(
    job_id: str,
    service_url: str = SERVICE_URL,
    api_key: str = API_KEY,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the job ends."),
) -> None:
    """A job's events, oldest first (hyperparameters and why, progress, metrics, checkpoints)."""
    status = follow_events(sdk(service_url, api_key), job_id, follow=follow)
    if follow and status != "succeeded":
        raise typer.Exit(EXIT_INPUT)


@jobs_app.command("cancel")
@api_errors
def jobs_cancel(job_id: str, service_url: str = SERVICE_URL, api_key: str = API_KEY) -> None:
    """Cancel a job (a running one stops within seconds; nothing is served)."""
    job = sdk(service_url, api_key).fine_tuning.jobs.cancel(job_id)
    typer.echo(f"{job.id}: {job.status}")


def new_events(client: Any, job_id: str, last: int) -> list[Any]:
    """Events after sequence number ``last``, oldest first (the API lists newest first)."""
    found: list[Any] = []
    after = None
    while True:
        page = client.fine_tuning.jobs.list_events(job_id, after=after, limit=100)
        fresh = [e for e in page.data if seq(e) > last]
        found += fresh
        if len(fresh) < len(page.data) or not page.has_more:
            return found[::-1]
        after = page.data[-1].id


def seq(event: Any) -> int:
    return int(event.id.removeprefix("ftevent-"))


def follow_events(client: Any, job_id: str, *, follow: bool, poll_s: float = 1.0) -> str:
    last = 0
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        for event in new_events(client, job_id, last):
            stamp = time.strftime("%H:%M:%S", time.localtime(event.created_at))
            typer.echo(f"{stamp} {event.message}")
            last = seq(event)
        if not follow or job.status in TERMINAL:
            return str(job.status)
        time.sleep(poll_s)


@api_errors
def train_on_service(
    service_url: str, api_key: str | None, files: dict[str, str], job: dict[str, Any]
) -> str:
    """`imprint train --service-url`: upload, create the job, follow its events; the fine-tuned model id."""
    client = sdk(service_url, api_key)
    ids = {}
    for field, path in files.items():
        with Path(path).open("rb") as fh:
            ids[field] = client.files.create(file=fh, purpose="fine-tune").id
        typer.echo(f"uploaded {path} as {ids[field]}", err=True)
    created = client.fine_tuning.jobs.create(**ids, **job)
    typer.echo(f"created {created.id}; following (Ctrl-C leaves it running on the service)", err=True)
    status = follow_events(client, created.id, follow=True)
    final = client.fine_tuning.jobs.retrieve(created.id)
    if status != "succeeded":
        reason = final.error.message if final.error else status
        raise fail(f"job {created.id} {status}: {reason}")
    return str(final.fine_tuned_model)


def remote_job(values: dict[str, Any], imprint: dict[str, Any]) -> dict[str, Any]:
    """The create-job body from `imprint train` flags (None: not given; the service's defaults apply)."""
    hp = {
        k: values[k] for k in ("n_epochs", "batch_size", "learning_rate_multiplier") if values[k] is not None
    }
    body: dict[str, Any] = {
        "model": values["base_model"] or "gemma3-270m",
        "method": {
            "type": "supervised",
            "supervised": {"hyperparameters": {k: _number(v) for k, v in hp.items()}},
        },
    }
    if values["suffix"]:
        body["suffix"] = values["suffix"]
    if values["seed"] is not None:
        body["seed"] = values["seed"]
    extra = {k: v for k, v in imprint.items() if v is not None}
    if extra:
        body["extra_body"] = {"imprint": extra}
    return body


def _number(value: str) -> Any:
    if value == "auto":
        return value
    return float(value) if "." in value or "e" in value.lower() else int(value)
