"""`imprint schedule add | list | remove` — retraining schedules on a running service (``/v1/schedules``):
each tick creates an ordinary gated fine-tuning job when the watched training data changed.

    imprint schedule add --adapter family --training-path data/family.jsonl --every-s 3600
    imprint schedule add --adapter family --training-path data/family.jsonl --cron "0 3 * * *"
    imprint schedule list
    imprint schedule remove sched-…
"""

from __future__ import annotations

import json

import typer

from service.cli._app import _TYPER, app
from service.cli.adapters_cmds import call
from service.cli.jobs_cmds import API_KEY, SERVICE_URL, api_errors

schedule_app = typer.Typer(help="Retraining schedules on a running Imprint service.", **_TYPER)
app.add_typer(schedule_app, name="schedule")


@schedule_app.command("add")
@api_errors
def schedule_add(
    adapter: str = typer.Option(..., "--adapter", help="The registry name the jobs update."),
    training_path: str = typer.Option(..., "--training-path", help="Watched file, relative to the home."),
    model: str = typer.Option("gemma3-270m", "--model", help="Base model to fine-tune."),
    every_s: float = typer.Option(None, "--every-s", help="Tick every N seconds."),
    cron: str = typer.Option(None, "--cron", help="Tick on a cron schedule (UTC)."),
    eval_file: str = typer.Option(None, "--eval-file", help="Questions file id (purpose user_data)."),
    promote: str = typer.Option("if_better", "--promote", help="if_better | always | never"),
    service_url: str = SERVICE_URL,
    api_key: str = API_KEY,
) -> None:
    """Add a schedule; prints its id."""
    body = {"adapter": adapter, "training_path": training_path, "model": model, "promote": promote}
    body.update({k: v for k, v in (("every_s", every_s), ("cron", cron), ("eval_file", eval_file)) if v})
    typer.echo(call(service_url, api_key, "post", "/schedules", body)["id"])


@schedule_app.command("list")
@api_errors
def schedule_list(service_url: str = SERVICE_URL, api_key: str = API_KEY) -> None:
    """Every schedule (JSON lines)."""
    for s in call(service_url, api_key, "get", "/schedules")["data"]:
        typer.echo(json.dumps(s, ensure_ascii=False))


@schedule_app.command("remove")
@api_errors
def schedule_remove(schedule_id: str, service_url: str = SERVICE_URL, api_key: str = API_KEY) -> None:
    """Delete a schedule (its jobs stay)."""
    import httpx

    from service.cli.jobs_cmds import sdk

    sdk(service_url, api_key).delete(f"/schedules/{schedule_id}", cast_to=httpx.Response)
    typer.echo(f"{schedule_id} removed")
