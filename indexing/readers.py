"""Read Markdown, text, HTML, PDF and JSONL files into llama-index Documents with stable ids.

    python -m indexing.readers DOCS_DIR     # list the documents that would be indexed

A document id is the file's path relative to the indexed root (POSIX separators), so renaming the root folder
or indexing from another machine keeps ids stable. JSONL files hold one document per line
(``{"id", "text", "metadata"}``); their ids are ``relpath#id``. Each document carries ``source``, ``title``,
``content_sha256`` and ``modified`` (ISO UTC) metadata.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from llama_index.core import Document

SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
}
# Metadata that must not change what a chunk means to the embedder (ids, hashes, times).
EMBED_EXCLUDED = ["doc_id", "source", "content_sha256", "modified", "format"]


class ReadError(ValueError):
    """A file could not be read; the message names the file (and line) and the fix."""


@dataclass(frozen=True)
class SourceFile:
    root: Path
    path: Path

    @property
    def rel(self) -> str:
        return self.path.relative_to(self.root).as_posix()


def iter_files(paths: list[Path]) -> Iterator[SourceFile]:
    """Supported files under ``paths`` (a file's root is its parent folder), sorted, hidden ones skipped."""
    for p in paths:
        p = p.expanduser().resolve()
        if not p.exists():
            raise ReadError(f"{p}: no such file or folder; check the path you passed to `imprint index`")
        if p.is_file():
            if p.suffix.lower() in SUFFIXES:
                yield SourceFile(p.parent, p)
            continue
        for f in sorted(p.rglob("*")):
            rel = f.relative_to(p).parts
            if f.is_file() and f.suffix.lower() in SUFFIXES and not any(part.startswith(".") for part in rel):
                yield SourceFile(p, f)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _title_from_markdown(text: str, fallback: str) -> str:
    m = re.search(r"^#[ \t]+(.+?)[ \t#]*$", text, re.MULTILINE)
    return m.group(1).strip() if m else fallback


def _read_html(path: Path) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8", errors="replace"), "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else None
    # Headings become Markdown headings so the chunker keeps sections.
    for level in range(1, 7):
        for h in soup.find_all(f"h{level}"):
            h.replace_with(f"\n{'#' * level} {h.get_text(' ', strip=True)}\n")
    text = soup.get_text("\n")
    return re.sub(r"\n{3,}", "\n\n", text).strip(), title


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
    except Exception as e:  # pypdf raises many types for damaged files
        raise ReadError(f"{path}: not a readable PDF ({e}); re-export it or remove it from the folder") from e


def make_document(
    doc_id: str, text: str, *, source: str, title: str, modified: str, fmt: str, extra: dict | None = None
) -> Document:
    metadata: dict = {k: v for k, v in (extra or {}).items() if isinstance(v, str | int | float | bool)}
    metadata.update(
        doc_id=doc_id,
        source=source,
        title=title,
        modified=modified,
        format=fmt,
        content_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )
    return Document(
        id_=doc_id,
        text=text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(EMBED_EXCLUDED),
        excluded_llm_metadata_keys=list(EMBED_EXCLUDED),
    )


def read_file(src: SourceFile) -> list[Document]:
    """The documents in one file (several for JSONL, none for an empty file)."""
    path, rel = src.path, src.rel
    fmt = SUFFIXES[path.suffix.lower()]
    modified = _iso(path.stat().st_mtime)
    if fmt == "jsonl":
        docs = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                doc_id, text = str(rec["id"]), str(rec["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ReadError(
                    f'{path}:{n}: expected a JSON object with "id" and "text" ({e}); fix that line'
                ) from e
            meta = rec.get("metadata") or {}
            if not isinstance(meta, dict):
                raise ReadError(f'{path}:{n}: "metadata" must be an object; fix that line')
            title = str(meta.get("title") or rec.get("title") or doc_id)
            docs.append(
                make_document(
                    f"{rel}#{doc_id}",
                    text,
                    source=str(path),
                    title=title,
                    modified=str(meta.get("modified") or modified),
                    fmt="jsonl",
                    extra=meta,
                )
            )
        return docs
    if fmt == "html":
        text, title = _read_html(path)
    elif fmt == "pdf":
        text, title = _read_pdf(path), None
    else:
        text, title = path.read_text(encoding="utf-8", errors="replace"), None
    if not text.strip():
        return []
    if title is None:
        title = _title_from_markdown(text, path.stem) if fmt == "markdown" else path.stem
    return [make_document(rel, text, source=str(path), title=title, modified=modified, fmt=fmt)]


def read_paths(paths: list[Path]) -> list[Document]:
    """All documents under ``paths``; two files with the same id is an error naming both."""
    docs: dict[str, Document] = {}
    for src in iter_files(paths):
        for doc in read_file(src):
            if doc.id_ in docs:
                raise ReadError(
                    f"two documents share the id {doc.id_!r}: {docs[doc.id_].metadata['source']} and "
                    f"{doc.metadata['source']}; index them into separate KBs or rename one"
                )
            docs[doc.id_] = doc
    return list(docs.values())


if __name__ == "__main__":
    for d in read_paths([Path(p) for p in sys.argv[1:]]):
        print(f"{d.id_}\t{d.metadata['title']}\t{len(d.text)} chars")
