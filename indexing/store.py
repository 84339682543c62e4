"""Where a knowledge base keeps its data: Chroma (client cache, collection), the manifest, the docstore and
the chunk store. Every file is written through ``training.fileio`` (temp file + rename), never half-written.

Nothing to run here: ``KnowledgeBase`` (``indexing/kb.py``) uses it; ``pytest tests/indexing/test_store.py``.

``$IMPRINT_HOME/kb/NAME/`` holds:
- ``kb.json``       manifest: embedder + dim, remembered paths, chunking, Chroma location, times, counts;
- ``docstore.json`` llama-index docstore (documents + their hashes): the commit record of what Chroma holds;
- ``chunks.pkl``    every chunk's text, metadata and BM25 terms (the BM25 index is rebuilt from it in ms). It
  is a cache of Chroma: a missing, unreadable or old-format file is rebuilt from the collection;
- ``chroma/``       the embedded Chroma database (unless the KB lives on a Chroma server, ``chroma_url``).
"""

from __future__ import annotations

import json
import pickle
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexing.errors import KBError
from training.errors import Unavailable
from training.fileio import atomic_write, atomic_write_json
from training.text import index_terms

# Chroma's own bookkeeping keys (llama-index adds them) and our version stamp: not user metadata.
INTERNAL_KEYS = frozenset({"_node_content", "_node_type", "document_id", "ref_doc_id", "doc_version"})
# chunks.pkl holds {"format": CHUNKS_FORMAT, "chunks": {id: (doc_id, text, metadata, terms)}}: builtins only,
# so moving a class never makes it unreadable. Bump it when the BM25 terms change (training.text), so the
# store is rebuilt from Chroma with the new ones.
CHUNKS_FORMAT = 2


@dataclass
class StoredChunk:
    doc_id: str
    text: str
    metadata: dict[str, Any]
    tokens: list[str]  # BM25 terms of title + heading + text


def make_chunk(text: str, metadata: dict[str, Any], doc_id: str | None = None) -> StoredChunk:
    """A chunk as search reads it: user metadata only, BM25 terms from title, heading and text."""
    md = {k: v for k, v in metadata.items() if k not in INTERNAL_KEYS}
    doc = doc_id or str(metadata.get("doc_id") or metadata.get("document_id"))
    return StoredChunk(doc, text, md, index_terms(f"{md.get('title', '')} {md.get('heading', '')} {text}"))


NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_name(name: object) -> str:
    """``name`` if it is a valid KB name (it becomes a folder name), else KBError naming the field."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise KBError(
            f"invalid KB name {name!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (e.g. shop)",
            param="name",
        )
    return name


def now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kb_root(home: Path | str | None) -> Path:
    """The folder that holds every KB: ``$IMPRINT_HOME/kb`` (or ``home/kb``)."""
    if home is None:
        from training.paths import imprint_home

        home = imprint_home()
    return Path(home).expanduser().resolve() / "kb"


# One Chroma client per database path or server URL per process: chromadb allows only one embedded client
# per path, and opening one is slow.
_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def chroma_client(path: Path, chroma_url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings

    key = chroma_url or str(path)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            settings = Settings(anonymized_telemetry=False, allow_reset=False)
            if chroma_url:
                from urllib.parse import urlparse

                u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
                try:
                    _CLIENTS[key] = chromadb.HttpClient(
                        host=u.hostname or "localhost",
                        port=u.port or 8000,
                        ssl=u.scheme == "https",
                        settings=settings,
                    )
                except (ValueError, OSError) as e:  # chromadb says "Could not connect" with a ValueError
                    raise Unavailable(
                        f"Chroma server {chroma_url} is not reachable ({e}); start it, or fix the KB's "
                        "chroma_url (kb.json, --chroma-url)",
                        param="chroma_url",
                    ) from e
            else:
                path.mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(path=str(path), settings=settings)
        return _CLIENTS[key]


def close_client(path: Path) -> None:
    """Close the embedded client for ``path`` so its folder can be deleted and later re-created."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.pop(str(path), None)
    if client is not None and hasattr(client, "close"):
        client.close()  # stops chroma's shared system for that path, else it keeps the deleted sqlite open


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KBError(
            f"{path}: cannot read the KB manifest ({e}); restore it from a backup, or delete the folder "
            f"{path.parent} and index again"
        ) from e
    if not isinstance(manifest, dict) or "embedder" not in manifest:
        raise KBError(f"{path}: not a KB manifest (no 'embedder'); delete {path.parent} and index again")
    return manifest


class Store:
    """The files and the Chroma collection of one KB (``root`` = ``$IMPRINT_HOME/kb/NAME``)."""

    def __init__(self, root: Path, manifest: dict[str, Any]) -> None:
        self.root = root
        self.manifest = manifest
        self._collection: Any = None

    @property
    def manifest_path(self) -> Path:
        return self.root / "kb.json"

    @property
    def chunks_path(self) -> Path:
        return self.root / "chunks.pkl"

    @property
    def collection(self) -> Any:
        # Cached: get_or_create is a database round trip, too slow for every search.
        if self._collection is None:
            client = chroma_client(self.root / "chroma", self.manifest.get("chroma_url"))
            self._collection = client.get_or_create_collection(
                self.manifest["collection"], metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
        return self._collection

    def forget_collection(self) -> None:
        self._collection = None

    # ── manifest ────────────────────────────────────────────────────────────────────────────────────────────
    def save_manifest(self) -> None:
        atomic_write_json(self.manifest_path, self.manifest)

    def read_manifest(self) -> dict[str, Any] | None:
        return read_manifest(self.manifest_path) if self.manifest_path.exists() else None

    # ── docstore: the commit record ─────────────────────────────────────────────────────────────────────────
    def load_docstore(self) -> Any:
        from llama_index.core.storage.docstore import SimpleDocumentStore

        path = self.root / "docstore.json"
        return SimpleDocumentStore.from_persist_path(str(path)) if path.exists() else SimpleDocumentStore()

    def save_docstore(self, docstore: Any) -> None:
        atomic_write_json(self.root / "docstore.json", docstore.to_dict(), indent=None)

    # ── chunk store ─────────────────────────────────────────────────────────────────────────────────────────
    def chunks_key(self) -> tuple[int, ...] | None:
        """Identity of the chunk store's current version. The file is replaced atomically, so a new
        inode/mtime/size means a new version (mtime alone is too coarse: two runs can land in one tick)."""
        try:
            st = self.chunks_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read_chunks(self) -> dict[str, StoredChunk] | None:
        """The chunk store; ``{}`` when there is none yet, None when it is unreadable or in an old format
        (callers rebuild it from Chroma with :meth:`chunks_from_chroma`)."""
        try:
            data = pickle.loads(self.chunks_path.read_bytes())
        except FileNotFoundError:
            return {}
        except Exception:  # an old format whose classes moved, or a damaged file: it is only a cache
            return None
        if not isinstance(data, dict) or data.get("format") != CHUNKS_FORMAT:
            return None
        return {cid: StoredChunk(*row) for cid, row in data["chunks"].items()}

    def save_chunks(self, chunks: dict[str, StoredChunk]) -> None:
        rows = {cid: (c.doc_id, c.text, c.metadata, c.tokens) for cid, c in chunks.items()}
        payload = {"format": CHUNKS_FORMAT, "chunks": rows}
        atomic_write(self.chunks_path, pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))

    def chunks_from_chroma(self, ids: set[str] | None = None) -> dict[str, StoredChunk]:
        """Chunks rebuilt from what Chroma holds (all of them, or only ``ids``)."""
        got = self.collection.get(include=["metadatas", "documents"])
        return {
            cid: make_chunk(text, meta)
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
            if ids is None or cid in ids
        }

    def drop_contents(self) -> None:
        """Delete the collection, the docstore and the chunk store (the manifest stays)."""
        client = chroma_client(self.root / "chroma", self.manifest.get("chroma_url"))
        if self.manifest["collection"] in [c.name for c in client.list_collections()]:
            client.delete_collection(self.manifest["collection"])
        self._collection = None
        for f in ("docstore.json", "chunks.pkl"):
            (self.root / f).unlink(missing_ok=True)
