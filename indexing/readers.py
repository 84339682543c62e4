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
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from llama_index.core import Document

from indexing.errors import ReadError
from training.fileio import read_jsonl_lines

__all__ = [
    "SUFFIXES",
    "ReadError",
    "ReadResult",
    "Skipped",
    "SourceFile",
    "iter_files",
    "read_file",
    "read_paths",
]

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


@dataclass(frozen=True)
class SourceFile:
    root: Path
    path: Path

    @property
    def rel(self) -> str:
        return self.path.relative_to(self.root).as_posix()


@dataclass(frozen=True)
class Skipped:
    """A file or folder that was not read: its path, and a message naming it, what is wrong and the fix."""

    path: str
    reason: str


@dataclass
class ReadResult:
    documents: list[Document]
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0  # supported files found (read or skipped)
    empty_paths: list[str] = field(default_factory=list)  # given paths holding no supported file


def _walk(root: Path, skipped: list[Skipped]) -> Iterator[Path]:
    """Files under ``root``, sorted, hidden ones skipped; an unreadable folder is reported, not ignored."""

    def unreadable(err: OSError) -> None:
        # os.walk (and Path.rglob) silently drop folders they cannot list; their documents would then look
        # deleted. Reported, the run keeps what the KB holds from there.
        where = err.filename or root
        skipped.append(
            Skipped(
                str(where),
                f"{where}: cannot list this folder ({err.strerror}); fix its permissions (chmod +rx)",
            )
        )

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def iter_files(paths: list[Path], skipped: list[Skipped] | None = None) -> Iterator[SourceFile]:
    """Supported files under ``paths`` (a file's root is its parent folder), sorted, hidden ones skipped.

    A path that does not exist is a :class:`ReadError` naming it (it is the caller's input, not a file).
    """
    skipped = [] if skipped is None else skipped
    for p in paths:
        p = Path(p).expanduser().resolve()
        if not p.exists():
            raise ReadError(
                f"{p}: no such file or folder; check the path you passed to `imprint index`", param="paths"
            )
        if p.is_file():
            if p.suffix.lower() in SUFFIXES:
                yield SourceFile(p.parent, p)
            continue
        for f in _walk(p, skipped):
            if f.suffix.lower() in SUFFIXES and f.is_file():
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
    except OSError:
        raise  # reported by read_file as "cannot read"
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


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e


def _not_utf8(path: Path, e: UnicodeDecodeError) -> ReadError:
    return ReadError(
        f"{path}: not UTF-8 (byte 0x{e.object[e.start]:02x} at offset {e.start}); re-save the file as UTF-8 "
        "(e.g. `iconv -f GBK -t UTF-8`)"
    )


def _read_jsonl(path: Path, rel: str, modified: str) -> list[Document]:
    docs = []
    try:
        # JSON Lines ends lines at "\n" only: U+2028/U+2029/U+0085 inside a JSON string are text.
        lines = list(read_jsonl_lines(path))
    except UnicodeDecodeError as e:
        raise _not_utf8(path, e) from e
    for n, line in lines:
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


def read_file(src: SourceFile) -> list[Document]:
    """The documents in one file (several for JSONL, none for an empty file).

    Raises :class:`ReadError` naming the file (and line) and the fix for a file that cannot be read: no
    permission, not UTF-8, a bad JSONL line, a damaged PDF.
    """
    path, rel = src.path, src.rel
    fmt = SUFFIXES[path.suffix.lower()]
    try:
        modified = _iso(path.stat().st_mtime)
        if fmt == "jsonl":
            return _read_jsonl(path, rel, modified)
        if fmt == "html":
            text, title = _read_html(path)
        elif fmt == "pdf":
            text, title = _read_pdf(path), None
        else:
            text, title = _decode(path, path.read_bytes()), None
    except OSError as e:
        raise ReadError(
            f"{path}: cannot read it ({e.strerror or e}); fix its permissions (chmod +r) or move it out of "
            "the indexed folder"
        ) from e
    if not text.strip():
        return []
    if title is None:
        title = _title_from_markdown(text, path.stem) if fmt == "markdown" else path.stem
    return [make_document(rel, text, source=str(path), title=title, modified=modified, fmt=fmt)]


def read_paths(paths: list[Path]) -> ReadResult:
    """All documents under ``paths``, and every file that could not be read (with why and the fix).

    One bad file never stops the others. A document whose id is already taken (two roots holding the same
    relative path, a JSONL file repeating an id) is skipped too, naming the file that has it first.
    """
    result = ReadResult(documents=[])
    seen: dict[str, Document] = {}
    for p in paths:
        before = result.files
        for src in iter_files([p], result.skipped):
            result.files += 1
            try:
                docs = read_file(src)
            except ReadError as e:
                result.skipped.append(Skipped(str(src.path), e.message))
                continue
            for doc in docs:
                if doc.id_ in seen:
                    result.skipped.append(
                        Skipped(
                            str(src.path),
                            f"{src.path}: document id {doc.id_!r} is already used by "
                            f"{seen[doc.id_].metadata['source']}; "
                            "index them into separate KBs, or rename one (JSONL: give each line its own id)",
                        )
                    )
                    continue
                seen[doc.id_] = doc
        if result.files == before:
            result.empty_paths.append(str(Path(p).expanduser().resolve()))
    result.documents = list(seen.values())
    return result


if __name__ == "__main__":
    found = read_paths([Path(p) for p in sys.argv[1:]])
    for d in found.documents:
        print(f"{d.id_}\t{d.metadata['title']}\t{len(d.text)} chars")
    for s in found.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
