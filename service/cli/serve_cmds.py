"""`imprint serve | retrain` — flags → config → run (foreground)."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli._app import EXIT_PROBLEMS, app, reports_errors
from service.cli.training_cmds import CONFIG


@app.command("serve")
@reports_errors
def serve_cmd(
    adapter: list[Path] = typer.Option(
        None, "--adapter", help="Adapter folder from `imprint train` (repeat)."
    ),
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base to retrieve from (`imprint index`)."),
    engine: str | None = typer.Option(None, "--engine", help="embedded (default, in-process) or vllm."),
    vllm_url: str | None = typer.Option(None, "--vllm-url", help="A running vLLM OpenAI server."),
    start_vllm: bool = typer.Option(None, "--start-vllm", help="Launch vLLM with the adapters."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 8000)."),
    base_model: str | None = typer.Option(None, "--base-model", help="Default: the adapters' base model."),
    config: Path = CONFIG,
) -> None:
    """Serve the OpenAI-compatible API: routed `imprint`, forced `imprint-base|-adapter|-rag`."""
    from service.config import ServeConfig
    from service.launch import run_serve

    cfg = ServeConfig.load(
        config,
        adapters=adapter or None,
        kb=kb,
        engine=engine,
        vllm_url=vllm_url,
        start_vllm=start_vllm,
        host=host,
        port=port,
        base_model=base_model,
    )
    run_serve(cfg)


@app.command("retrain")
@reports_errors
def retrain_cmd(
    training_file: Path = typer.Option(None, "--training-file", help="Chat JSONL to watch and train on."),
    adapters_root: Path = typer.Option(
        None, "--adapters-root", help="Versioned adapters go in ROOT/NAME-vN."
    ),
    name: str = typer.Option(None, "--name", help="Adapter name (the served model imprint-adapter:NAME)."),
    base_model: str | None = typer.Option(None, "--base-model"),
    kb: str | None = typer.Option(None, "--kb", help="Add RAFT examples from this knowledge base."),
    reading_examples: int = typer.Option(
        None, "--reading-examples", help="Synthetic reading curriculum size."
    ),
    service_url: list[str] = typer.Option(None, "--service-url", help="Hot-load into this Imprint service."),
    vllm_url: list[str] = typer.Option(None, "--vllm-url", help="Hot-load into this vLLM server."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="IMPRINT_API_KEY"),
    cron: str | None = typer.Option(None, "--cron", help="Crontab schedule, e.g. '0 3 * * *'."),
    every_s: int | None = typer.Option(None, "--every", help="Check the file every N seconds."),
    once: bool = typer.Option(False, "--once", help="Run one check now and exit."),
    config: Path = CONFIG,
) -> None:
    """Retrain when the training file changes (by sha256) into a new version, then hot-load it (standalone;
    on a service, `imprint schedule add` makes gated jobs instead)."""
    from deploy.retrain import RetrainConfig, run_once, run_scheduler

    cfg = RetrainConfig.load(
        config,
        training_file=training_file,
        adapters_root=adapters_root,
        name=name,
        base_model=base_model,
        kb=kb,
        reading_examples=reading_examples,
        service_urls=service_url or None,
        vllm_urls=vllm_url or None,
        api_key=api_key,
        cron=cron,
        every_s=every_s,
    )
    if once:
        result = run_once(cfg)
        typer.echo(result.summary())
        raise typer.Exit(0 if result.ok else EXIT_PROBLEMS)
    run_scheduler(cfg)
