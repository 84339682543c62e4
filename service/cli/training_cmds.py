"""`imprint data check | train | adapters list | eval | demo` — flags → config → one library call."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli._app import EXIT_INPUT, EXIT_INTERRUPTED, adapters_app, app, data_app, fail, reports_errors

CONFIG = typer.Option(None, "--config", help="YAML file with the command's settings (flags override it).")


@data_app.command("check")
@reports_errors
def data_check(
    file: str = typer.Argument(..., help="chat JSONL training file"),
    base_model: str = typer.Option(None, "--base-model", help="tokenizer + chat template to check against"),
    preview: int = typer.Option(3, help="how many examples to render with the chat template"),
    max_tokens: int = typer.Option(1024, help="token limit per example (the training max_seq_len)"),
) -> None:
    """Validate a chat JSONL file (OpenAI rules), show statistics and a rendered preview."""
    from training.data import check

    report = check(file, base_model=base_model, preview=preview, max_tokens=max_tokens)
    raise typer.Exit(0 if report.ok else EXIT_INPUT)


def kb_search(kb: str | None):
    """The retrieval function RAFT examples need (training cannot import indexing; this root can)."""
    if kb is None:
        return None
    from indexing.registry import get_kb

    knowledge_base = get_kb(kb)
    return lambda q: knowledge_base.search(q, k=3)


@app.command("train")
@reports_errors
def train_cmd(
    training_file: str = typer.Option(None, "--training-file", help="chat JSONL (see `imprint data check`)"),
    validation_file: str = typer.Option(None, "--validation-file", help="optional; default: automatic split"),
    base_model: str = typer.Option(
        None, "--base-model", help="gemma3-270m (default), tiny-phi3, HF id, path"
    ),
    n_epochs: str = typer.Option(None, "--n-epochs", help="number or auto [default: auto]"),
    batch_size: str = typer.Option(None, "--batch-size", help="number or auto [default: auto]"),
    learning_rate_multiplier: str = typer.Option(
        None, "--learning-rate-multiplier", help="× 2e-4, or auto [default: auto]"
    ),
    suffix: str = typer.Option(None, "--suffix", help="adapter name"),
    output: str = typer.Option(None, "--output", help="adapter folder (default $IMPRINT_HOME/adapters/NAME)"),
    seed: int = typer.Option(None, "--seed", help="random seed [default: 42]"),
    augment: int = typer.Option(None, "--augment", help="paraphrased copies per example (rule-based)"),
    lora_r: int = typer.Option(None, "--lora-r", help="LoRA rank (≤ 64) [default: 16]; alpha = 2 × rank"),
    kb: str = typer.Option(None, "--kb", help="knowledge base for retrieval-aware (RAFT) examples"),
    reading_examples: int = typer.Option(
        None, "--reading-examples", help="synthetic reading examples to add"
    ),
    reader: bool = typer.Option(
        None,
        "--reader/--no-reader",
        help="with --kb: start from the reading skill built once per base model [default: --reader]",
    ),
    resume: str = typer.Option(None, "--resume", help="job id under $IMPRINT_HOME/jobs, or 'last'"),
    stop_after_steps: int = typer.Option(None, "--stop-after-steps", help="stop early (resumable)"),
    service_url: str = typer.Option(
        None, "--service-url", help="submit to this Imprint service as a fine-tuning job instead"
    ),
    api_key: str = typer.Option(None, "--api-key", envvar="IMPRINT_API_KEY", help="with --service-url"),
    config: Path = CONFIG,
) -> None:
    """Fine-tune a LoRA adapter on chat JSONL (auto hyperparameters like OpenAI/Foundry)."""
    from training.config import ConfigError
    from training.train import TrainConfig, TrainingInterrupted, train

    if training_file is None and resume is None and config is None:
        raise ConfigError("training_file: missing — pass --training-file FILE (or --resume JOB)")
    if service_url:
        from service.cli.jobs_cmds import remote_job, train_on_service

        files = {"training_file": training_file, "validation_file": validation_file}
        body = remote_job(
            dict(base_model=base_model, n_epochs=n_epochs, batch_size=batch_size, suffix=suffix, seed=seed,
                 learning_rate_multiplier=learning_rate_multiplier),
            dict(kb=kb, reading_examples=reading_examples, augment=augment, lora_r=lora_r),
        )  # fmt: skip
        files = {k: v for k, v in files.items() if v}
        typer.echo(train_on_service(service_url, api_key, files, body))
        return
    cfg = TrainConfig.load(
        config,
        training_file=training_file or ("-" if resume else None),
        validation_file=validation_file,
        base_model=base_model,
        n_epochs=n_epochs,
        batch_size=batch_size,
        learning_rate_multiplier=learning_rate_multiplier,
        suffix=suffix,
        output=output,
        seed=seed,
        augment=augment,
        lora_r=lora_r,
        kb=kb,
        reading_examples=reading_examples,
        reader=reader,
        resume=resume,
        stop_after_steps=stop_after_steps,
    )
    try:
        path = train(cfg, search=kb_search(cfg.kb))
    except TrainingInterrupted as exc:
        raise fail(str(exc), EXIT_INTERRUPTED) from None
    typer.echo(str(path))


@adapters_app.command("list")
def adapters_list(
    root: str = typer.Option(None, help="folder of adapters (default $IMPRINT_HOME/adapters)"),
    service_url: str = typer.Option(
        None, "--service-url", help="Show a running service's adapter registry (names, versions, promoted)."
    ),
    api_key: str = typer.Option(None, "--api-key", envvar="IMPRINT_API_KEY", help="The service's key."),
) -> None:
    """Show every adapter folder (base model, data hash, hyperparameters, metrics), or with --service-url the
    service's registry: every name's versions, which is promoted, their gate scores."""
    if service_url:
        from service.cli.adapters_cmds import show_registry

        show_registry(service_url, api_key)
        return
    from rich.console import Console
    from rich.table import Table

    from training.adapter import list_adapters

    table = Table(title="adapters")
    for col in ("name", "base model", "created (UTC)", "epochs×batch@lr", "valid loss", "data", "path"):
        table.add_column(col)
    for a in list_adapters(root):
        hp = a.hyperparameters
        table.add_row(
            a.name,
            a.base_model,
            a.created_at or "",
            f"{hp.get('n_epochs')}×{hp.get('batch_size')}@{hp.get('learning_rate')}",
            str(a.metrics.get("valid_loss")),
            a.data_sha256[:12],
            str(a.path),
        )
    Console().print(table)


@app.command("eval")
@reports_errors
def eval_cmd(
    questions: str = typer.Option(None, "--questions", help="JSONL {question, expected[], kind?, id?}"),
    adapter: str = typer.Option(None, "--adapter", help="adapter folder (needed for ft)"),
    modes: str = typer.Option(
        None, "--modes", help="comma-separated: base, ft, rag, hybrid [default: base,ft]"
    ),
    kb: str = typer.Option(None, "--kb", help="knowledge base for rag/hybrid"),
    base_model: str = typer.Option(None, "--base-model", help="default: the adapter's base"),
    report: str = typer.Option(None, "--report", help="write the JSON report here"),
    plot: str = typer.Option(None, "--plot", help="bar chart PNG (default next to the report)"),
    max_new_tokens: int = typer.Option(None, "--max-new-tokens", help="tokens per answer [default: 64]"),
    config: Path = CONFIG,
) -> None:
    """Compare modes (base vs fine-tuned vs RAG vs routed) on the same questions, through the serving path."""
    from eval.run import EvalConfig, run_eval

    cfg = EvalConfig.load(
        config,
        questions=questions,
        adapter=adapter,
        modes=modes,
        kb=kb,
        base_model=base_model,
        report=report,
        plot=plot,
        max_new_tokens=max_new_tokens,
    )
    run_eval(cfg)


@app.command("demo")
@reports_errors
def demo_cmd(
    augment: int = typer.Option(
        None, "--augment", help="paraphrased copies per question (0: none) [default: 2]"
    ),
    output: str = typer.Option(None, "--output", help="default $IMPRINT_HOME/adapters/family"),
    reading_examples: int = typer.Option(
        None, "--reading-examples", help="synthetic reading examples (0: QA pairs only) [default: 24]"
    ),
    serve: bool = typer.Option(None, help="part 2: index, serve, change a fact, re-index, ask again"),
    config: Path = CONFIG,
) -> None:
    """The seed's story: check data, eval base, fine-tune, eval again; then serve and change a fact.

    Part 2 serves the adapter next to a knowledge base whose price changes, re-indexes it over HTTP and asks
    again through the openai SDK (--no-serve skips it)."""
    from eval.demo import DemoConfig, run_demo

    run_demo(
        DemoConfig.load(
            config, augment=augment, output=output, reading_examples=reading_examples, serve=serve
        )
    )
