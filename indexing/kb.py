"""Knowledge bases: incremental indexing into Chroma (via llama-index) and hybrid dense + BM25 search.

    python -m indexing.kb index docs/ --kb shop        # same as `imprint index docs/ --kb shop`
    python -m indexing.kb search "退货政策" --kb shop

On disk, ``$IMPRINT_HOME/kb/NAME/`` holds:
- ``kb.json``      manifest: embedder + dim, remembered paths, chunking, Chroma location, times, counts;
- ``docstore.json`` llama-index docstore (documents + their hashes) — the commit record of what Chroma holds;
- ``chunks.pkl``   every chunk's text, metadata and BM25 tokens (the BM25 index is rebuilt from it in ms);
- ``chroma/``      the embedded Chroma database (unless the KB lives on a Chroma server, ``chroma_url``);
- ``.lock``        writers hold an fcntl lock; ``.dirty`` exists while a run is changing things.

Incremental: only new or changed documents go through the llama-index ``IngestionPipeline`` (chunk → embed →
Chroma), in batches; the docstore is written (atomically) after each batch's vectors are in Chroma. Deleted
documents are removed from Chroma and the docstore first. If a run dies, ``.dirty`` stays behind and the next
run reconciles Chroma against the docstore (drops orphan/incomplete chunks, forgets incomplete documents so
they are re-embedded), so a re-run converges with no duplicates.
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexing.chunking import ImprintNodeParser
from indexing.embeddings import (
    DEFAULT_EMBEDDER,
    RELEVANCE_THRESHOLDS,
    ImprintEmbedding,
    canonical_name,
    get_embedder,
)
from indexing.readers import read_paths
from indexing.tokenize import tokenize

Mode = Literal["hybrid", "dense", "bm25"]
MODES = ("hybrid", "dense", "bm25")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# Hybrid = z-scored cosine + w * z-scored BM25 over the union of both candidate lists (see zscore_fuse).
# Measured (eval/bench/results/retrieval_quality.md, index_cost.md): BM25 alone misses paraphrases and
# cross-language questions (hit@3 0.63), so its everyday weight is small, 0.3: hybrid keeps dense's
# hit@3 of 0.98 (Chinese 1.00). But when the question names an identifier (a token with a digit that is in
# the index: a model number, an error code, a SKU) dense embeddings blur near-identical documents (hit@1 0.07
# on 2,000 product sheets) and BM25 is decisive (0.90), so there its weight is 1.5. Reciprocal-rank fusion
# did worse on both (0.91-0.96 hit@3, 0.12 on identifiers).
BM25_WEIGHT = 0.3
BM25_WEIGHT_IDENTIFIER = 1.5
RRF_K = 60  # for rrf_fuse, an alternative the benchmark compares
BATCH_DOCS = 64
# Chroma's own bookkeeping keys (llama-index adds them); not user metadata.
_INTERNAL_KEYS = {"_node_content", "_node_type", "document_id", "ref_doc_id"}


def rrf_fuse(rankings: list[list[str]], weights: list[float], k: int = RRF_K) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: ``sum(w / (k + rank))`` over the rankings holding an id."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, cid in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + weight / (k + rank)
    return fused


def zscore_fuse(cosine: dict[str, float], bm25: dict[str, float], bm25_weight: float) -> dict[str, float]:
    """``z(cosine) + bm25_weight * z(bm25)`` per candidate, z-scores taken over the candidates. Standardising
    puts both signals on one scale whatever the embedder's cosine range (USE: 0.1-0.6, e5: 0.8-0.9)."""

    def z(values: dict[str, float]) -> dict[str, float]:
        arr = np.array(list(values.values()), dtype=np.float64)
        std = float(arr.std()) if len(arr) > 1 else 0.0
        mean = float(arr.mean()) if len(arr) else 0.0
        return {c: (v - mean) / std if std > 0 else 0.0 for c, v in values.items()}

    zc, zb = z(cosine), z(bm25)
    return {c: zc[c] + bm25_weight * zb.get(c, 0.0) for c in cosine}


def convex_fuse(dense: dict[str, float], bm25: dict[str, float], alpha: float) -> dict[str, float]:
    """``(1 - alpha) * dense' + alpha * bm25'``: cosine min-max scaled over the candidates, BM25 divided by
    its max. Scaling per query makes one alpha work for embedders whose cosines live in different ranges."""
    fused: dict[str, float] = {}
    if dense:
        lo, hi = min(dense.values()), max(dense.values())
        for cid, sim in dense.items():
            fused[cid] = (1 - alpha) * ((sim - lo) / (hi - lo) if hi > lo else 1.0)
    top = max(bm25.values(), default=0.0)
    for cid, score in bm25.items():
        fused[cid] = fused.get(cid, 0.0) + (alpha * score / top if top > 0 else 0.0)
    return fused


class KBError(RuntimeError):
    """Base class: every message says what is wrong and how to fix it."""


class KBNotFoundError(KBError):
    pass


class EmbedderMismatchError(KBError):
    pass


class KBLockedError(KBError):
    pass


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    deleted: int
    unchanged: int
    chunks: int  # chunks in the KB after the run
    seconds: float = 0.0
    embedded_chunks: int = 0  # chunks embedded by this run (0 on an unchanged re-run)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hit:
    text: str
    score: float
    dense_similarity: float | None
    bm25_score: float | None
    doc_id: str
    source: str
    title: str
    heading: str
    start_char: int
    end_char: int
    chunk_id: str
    modified: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Chunk:
    doc_id: str
    text: str
    metadata: dict[str, Any]
    tokens: list[str]


@dataclass(frozen=True)
class _View:
    """What searches read: chunks and their BM25 index as of one finished index run (never mutated)."""

    chunks: dict[str, _Chunk]
    bm25: Any
    ids: list[str]  # BM25 row -> chunk id
    pos: dict[str, int]  # chunk id -> BM25 row
    key: tuple[int, ...] | None  # identity of the chunks.pkl it came from


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _kb_root(home: Path | str | None) -> Path:
    if home is None:
        from training.paths import imprint_home

        home = imprint_home()
    return Path(home).expanduser().resolve() / "kb"


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _chroma_client(path: Path, chroma_url: str | None) -> Any:
    import chromadb
    from chromadb.config import Settings

    key = chroma_url or str(path)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            settings = Settings(anonymized_telemetry=False, allow_reset=False)
            if chroma_url:
                from urllib.parse import urlparse

                u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
                _CLIENTS[key] = chromadb.HttpClient(
                    host=u.hostname or "localhost",
                    port=u.port or 8000,
                    ssl=u.scheme == "https",
                    settings=settings,
                )
            else:
                path.mkdir(parents=True, exist_ok=True)
                _CLIENTS[key] = chromadb.PersistentClient(path=str(path), settings=settings)
        return _CLIENTS[key]


def _close_client(path: Path) -> None:
    """Close the embedded client for ``path`` so its folder can be deleted and later re-created."""
    with _CLIENTS_LOCK:
        client = _CLIENTS.pop(str(path), None)
    if client is not None and hasattr(client, "close"):
        client.close()  # stops chroma's shared system for that path, else it keeps the deleted sqlite open


def _chunk_from_chroma(cid: str, text: str, meta: dict[str, Any]) -> _Chunk:
    md = {k: v for k, v in meta.items() if k not in _INTERNAL_KEYS}
    doc_id = str(meta.get("doc_id") or meta.get("document_id"))
    return _Chunk(doc_id, text, md, tokenize(f"{md.get('title', '')} {md.get('heading', '')} {text}"))


class KnowledgeBase:
    """One named knowledge base. Open with :meth:`open`; share one per process with :func:`get_kb`."""

    def __init__(self, name: str, root: Path, manifest: dict[str, Any], embedder: ImprintEmbedding) -> None:
        self.name = name
        self.root = root
        self.manifest = manifest
        self.embedder = embedder
        # Writers (index) work on _chunks; readers (search) use _view, an immutable snapshot
        # (chunks, bm25 index, ids, chunks.pkl mtime) swapped in whole, so a search running while the same
        # process re-indexes never sees a half-updated chunk table.
        self._chunks: dict[str, _Chunk] = {}
        self._view: _View | None = None
        self._read_lock = threading.RLock()
        self._collection_obj: Any = None

    # ── opening ─────────────────────────────────────────────────────────────────────────────────────────────
    @classmethod
    def open(
        cls,
        name: str,
        *,
        home: Path | str | None = None,
        chroma_url: str | None = None,
        embedder: str | None = None,
        create: bool = False,
        rebuild: bool = False,
        chunk_size: int = 400,
        chunk_overlap: int = 60,
    ) -> KnowledgeBase:
        """Open KB ``name`` (``create=True`` makes it if missing).

        ``embedder`` must match the one the KB was built with, unless ``rebuild=True`` (which empties the KB
        so the next :meth:`index` re-embeds everything with the new model).
        """
        if not NAME_RE.match(name):
            raise KBError(
                f"invalid KB name {name!r}: use 1-63 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit"
            )
        root = _kb_root(home) / name
        manifest_path = root / "kb.json"
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            wanted = canonical_name(embedder) if embedder else manifest["embedder"]
            if wanted != manifest["embedder"] and not rebuild:
                raise EmbedderMismatchError(
                    f"KB {name!r} was built with embedder {manifest['embedder']!r}, not {wanted!r}; "
                    f"drop --embedder to use {manifest['embedder']!r}, or re-embed everything with "
                    f"`imprint index --kb {name} --embedder {wanted} --rebuild`"
                )
            if chroma_url and chroma_url != manifest.get("chroma_url"):
                manifest["chroma_url"] = chroma_url
        elif create:
            manifest = {
                "name": name,
                "embedder": canonical_name(embedder or DEFAULT_EMBEDDER),
                "dim": None,
                "paths": [],
                "chunking": {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap},
                "chroma_url": chroma_url,
                "collection": f"imprint_{name}",
                "created": _now(),
                "updated": None,
                "documents": 0,
                "chunks": 0,
            }
            wanted = manifest["embedder"]
        else:
            raise KBNotFoundError(
                f"no knowledge base {name!r} under {root.parent}; create it with "
                f"`imprint index PATH --kb {name}` (or pass create=True)"
            )
        emb = get_embedder(wanted)
        if manifest.get("dim") not in (None, emb.dim) and wanted == manifest["embedder"]:
            raise EmbedderMismatchError(
                f"KB {name!r} holds {manifest['dim']}-d vectors but embedder {wanted!r} "
                f"makes {emb.dim}-d ones; rebuild with `imprint index --kb {name} --rebuild`"
            )
        kb = cls(name, root, manifest, emb)
        if not manifest_path.exists():
            root.mkdir(parents=True, exist_ok=True)
            manifest["dim"] = emb.dim
            kb._save_manifest()
        elif wanted != manifest["embedder"]:  # rebuild with another embedder: empty the KB now
            with kb._writer_lock(600.0, quiet=True):
                kb._drop_contents()
                manifest.update(embedder=wanted, dim=emb.dim, documents=0, chunks=0)
                kb._save_manifest()
        return kb

    @property
    def relevance_threshold(self) -> float | None:
        """Dense cosine above which the top hit is likely relevant with this embedder (None: unmeasured)."""
        return RELEVANCE_THRESHOLDS.get(self.manifest["embedder"])

    # ── storage helpers ─────────────────────────────────────────────────────────────────────────────────────
    @property
    def _collection(self) -> Any:
        # Cached: get_or_create is a database round trip, too slow for every search.
        if self._collection_obj is None:
            client = _chroma_client(self.root / "chroma", self.manifest.get("chroma_url"))
            self._collection_obj = client.get_or_create_collection(
                self.manifest["collection"], metadata={"hnsw:space": "cosine"}, embedding_function=None
            )
        return self._collection_obj

    def _refresh_manifest(self) -> None:
        path = self.root / "kb.json"
        if not path.exists():
            return
        on_disk = json.loads(path.read_text(encoding="utf-8"))
        if on_disk["embedder"] != self.manifest["embedder"]:
            raise EmbedderMismatchError(
                f"KB {self.name!r} was rebuilt with embedder {on_disk['embedder']!r} by another process; "
                "open it again (restart the service) to use it"
            )
        on_disk["chroma_url"] = self.manifest.get("chroma_url")
        self.manifest = on_disk

    def _save_manifest(self) -> None:
        _atomic_write(self.root / "kb.json", json.dumps(self.manifest, ensure_ascii=False, indent=2).encode())

    def _load_docstore(self) -> Any:
        from llama_index.core.storage.docstore import SimpleDocumentStore

        path = self.root / "docstore.json"
        return SimpleDocumentStore.from_persist_path(str(path)) if path.exists() else SimpleDocumentStore()

    def _save_docstore(self, docstore: Any) -> None:
        data = json.dumps(docstore.to_dict(), ensure_ascii=False).encode("utf-8")
        _atomic_write(self.root / "docstore.json", data)

    def _save_chunks(self) -> None:
        _atomic_write(self.root / "chunks.pkl", pickle.dumps(self._chunks, protocol=pickle.HIGHEST_PROTOCOL))

    def _drop_contents(self) -> None:
        client = _chroma_client(self.root / "chroma", self.manifest.get("chroma_url"))
        if self.manifest["collection"] in [c.name for c in client.list_collections()]:
            client.delete_collection(self.manifest["collection"])
        self._collection_obj = None
        for f in ("docstore.json", "chunks.pkl"):
            (self.root / f).unlink(missing_ok=True)
        self._chunks = {}

    @contextmanager
    def _writer_lock(self, timeout: float, *, quiet: bool = False) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as f:
            deadline = time.monotonic() + timeout
            told = False
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    f.seek(0)
                    holder = f.read().strip() or "another process"
                    if time.monotonic() >= deadline:
                        raise KBLockedError(
                            f"KB {self.name!r} is being indexed by {holder}; waited {timeout:.0f} s. "
                            "Try again when it finishes (or remove a stuck process)"
                        ) from None
                    if not told and not quiet:
                        print(f"KB {self.name!r} is locked by {holder}; waiting...", file=sys.stderr)
                        told = True
                    time.sleep(0.2)
            try:
                f.seek(0)
                f.truncate()
                f.write(f"pid {os.getpid()}")
                f.flush()
                yield
            finally:
                f.seek(0)
                f.truncate()
                fcntl.flock(f, fcntl.LOCK_UN)

    # ── indexing ────────────────────────────────────────────────────────────────────────────────────────────
    def index(
        self,
        paths: list[str | Path] | None = None,
        *,
        rebuild: bool = False,
        progress: bool = True,
        lock_timeout: float = 600.0,
    ) -> IndexReport:
        """Bring the KB in line with the files under ``paths`` (None: the remembered paths).

        Given paths become the KB's remembered paths. Only new/changed documents are embedded; documents no
        longer present are deleted. ``rebuild=True`` re-embeds everything.
        """
        t0 = time.perf_counter()
        with self._writer_lock(lock_timeout):
            self._refresh_manifest()  # another process may have re-indexed (new paths) since we opened
            roots = (
                [str(Path(p).expanduser().resolve()) for p in paths]
                if paths
                else list(self.manifest["paths"])
            )
            if not roots:
                raise KBError(
                    f"KB {self.name!r} has no remembered paths; pass the folders to index "
                    f"(`imprint index PATH --kb {self.name}`)"
                )
            docs = read_paths([Path(p) for p in roots])
            if roots != self.manifest["paths"]:  # remembered first, so a re-run after a crash knows them
                self.manifest["paths"] = roots
                self._save_manifest()
            dirty = self.root / ".dirty"
            if rebuild:
                dirty.touch()
                self._drop_contents()
            collection = self._collection
            docstore = self._load_docstore()
            self._chunks = self._read_chunks()
            if dirty.exists() or collection.count() != len(self._chunks):
                dirty.touch()
                self._reconcile(collection, docstore)

            old_hashes = {doc_id: h for h, doc_id in docstore.get_all_document_hashes().items()}
            for doc in docs:  # keep "modified" = when the content last changed, not when the file was touched
                prev = docstore.get_document(doc.id_, raise_error=False) if doc.id_ in old_hashes else None
                if prev is not None and prev.metadata.get("content_sha256") == doc.metadata["content_sha256"]:
                    doc.metadata["modified"] = prev.metadata.get("modified", doc.metadata["modified"])
            new_ids = {d.id_ for d in docs}
            todo = [d for d in docs if old_hashes.get(d.id_) != d.hash]
            added = sum(1 for d in todo if d.id_ not in old_hashes)
            deleted_ids = sorted(set(old_hashes) - new_ids)
            embedded = 0
            if todo or deleted_ids or dirty.exists():
                dirty.touch()
                embedded = self._apply(docstore, todo, deleted_ids, progress)
                self.manifest.update(
                    updated=_now(), documents=len(new_ids), chunks=len(self._chunks), dim=self.embedder.dim
                )
                self._save_manifest()
                dirty.unlink()
                if self._view is not None:
                    # This process also searches (a service after POST /reindex): rebuild the BM25 view now,
                    # in the background, instead of inside the next question's search (~1 s at 10k chunks).
                    threading.Thread(target=self._reader_view, name=f"warm-{self.name}", daemon=True).start()
        return IndexReport(
            added=added,
            updated=len(todo) - added,
            deleted=len(deleted_ids),
            unchanged=len(docs) - len(todo),
            chunks=len(self._chunks),
            seconds=round(time.perf_counter() - t0, 3),
            embedded_chunks=embedded,
        )

    def _pipeline(self, docstore: Any, collection: Any) -> Any:
        from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
        from llama_index.vector_stores.chroma import ChromaVectorStore

        chunking = self.manifest["chunking"]
        # UPSERTS, not UPSERTS_AND_DELETE: batches would delete each other; deletions happen up front.
        return IngestionPipeline(
            transformations=[ImprintNodeParser(**chunking), self.embedder],
            docstore=docstore,
            vector_store=ChromaVectorStore(chroma_collection=collection),
            docstore_strategy=DocstoreStrategy.UPSERTS,
        )

    def _apply(self, docstore: Any, todo: list[Any], deleted_ids: list[str], progress: bool) -> int:
        from rich.progress import Progress

        collection = self._collection
        pipeline = self._pipeline(docstore, collection)
        for doc_id in deleted_ids:
            collection.delete(where={"document_id": doc_id})
            docstore.delete_document(doc_id, raise_error=False)
        self._drop_doc_chunks(set(deleted_ids))
        if deleted_ids:
            self._save_docstore(docstore)
        embedded = 0
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"indexing {self.name}", total=len(todo))
            for i in range(0, len(todo), BATCH_DOCS):
                batch = todo[i : i + BATCH_DOCS]
                nodes = pipeline.run(documents=batch)
                self._drop_doc_chunks({doc.id_ for doc in batch})
                for node in nodes:
                    md = dict(node.metadata)
                    self._chunks[node.id_] = _Chunk(
                        node.ref_doc_id or md["doc_id"],
                        node.get_content(),
                        md,
                        tokenize(f"{md.get('title', '')} {md.get('heading', '')} {node.get_content()}"),
                    )
                embedded += len(nodes)
                # The docstore is the commit record: written only once this batch's vectors are in Chroma.
                self._save_docstore(docstore)
                bar.advance(task, len(batch))
        self._save_chunks()
        return embedded

    def _drop_doc_chunks(self, doc_ids: set[str]) -> None:
        for cid in [c for c, ch in self._chunks.items() if ch.doc_id in doc_ids]:
            del self._chunks[cid]

    def _reconcile(self, collection: Any, docstore: Any) -> None:
        """Make Chroma, the docstore and the chunk store agree after an interrupted run."""
        got = collection.get(include=["metadatas", "documents"])
        committed = {doc_id for doc_id in docstore.get_all_document_hashes().values()}
        sha = {}
        for doc_id in committed:
            d = docstore.get_document(doc_id, raise_error=False)
            sha[doc_id] = d.metadata.get("content_sha256") if d is not None else None
        per_doc: dict[str, list[int]] = {}
        orphans: list[str] = []
        for i, (cid, meta) in enumerate(zip(got["ids"], got["metadatas"], strict=True)):
            doc_id = str(meta.get("document_id"))
            if doc_id not in committed or meta.get("content_sha256") != sha[doc_id]:
                orphans.append(cid)
            else:
                per_doc.setdefault(doc_id, []).append(i)
        # A committed document must have all of its chunks; otherwise forget it so the run re-embeds it.
        for doc_id in committed:
            rows = per_doc.get(doc_id, [])
            expected = got["metadatas"][rows[0]].get("n_chunks") if rows else None
            if not rows or expected != len(rows):
                orphans += [got["ids"][i] for i in rows]
                per_doc.pop(doc_id, None)
                docstore.delete_document(doc_id, raise_error=False)
        if orphans:
            collection.delete(ids=orphans)
        self._save_docstore(docstore)
        self._chunks = {
            got["ids"][i]: _chunk_from_chroma(got["ids"][i], got["documents"][i], got["metadatas"][i])
            for rows in per_doc.values()
            for i in rows
        }
        self._save_chunks()

    # ── reading ─────────────────────────────────────────────────────────────────────────────────────────────
    def _read_chunks(self) -> dict[str, _Chunk]:
        path = self.root / "chunks.pkl"
        return pickle.loads(path.read_bytes()) if path.exists() else {}

    def _reader_view(self) -> _View:
        """(chunks, BM25 index, ids) as of the last finished index run, in this process or another."""
        import bm25s

        path = self.root / "chunks.pkl"
        # One stat per search. The file is replaced atomically, so a new inode/mtime/size means a new
        # version (mtime alone is too coarse: two runs can land in one kernel tick).
        st = path.stat() if path.exists() else None
        key = (st.st_ino, st.st_mtime_ns, st.st_size) if st else None
        view = self._view
        if view is None or view.key != key:
            with self._read_lock:
                view = self._view
                if view is None or view.key != key:
                    chunks = self._read_chunks()
                    ids = [cid for cid, ch in chunks.items() if ch.tokens]
                    index = bm25s.BM25()
                    if ids:
                        index.index([chunks[c].tokens for c in ids], show_progress=False)
                    view = self._view = _View(chunks, index, ids, {c: i for i, c in enumerate(ids)}, key)
        return view

    def _hit(
        self, cid: str, text: str, md: dict[str, Any], score: float, dense: float | None, bm25: float | None
    ) -> Hit:
        meta = {k: v for k, v in md.items() if k not in _INTERNAL_KEYS}
        return Hit(
            text=text,
            score=score,
            dense_similarity=dense,
            bm25_score=bm25,
            doc_id=str(meta.get("doc_id", "")),
            source=str(meta.get("source", "")),
            title=str(meta.get("title", "")),
            heading=str(meta.get("heading", "")),
            start_char=int(meta.get("start_char", 0)),
            end_char=int(meta.get("end_char", 0)),
            chunk_id=cid,
            modified=str(meta.get("modified", "")),
            metadata=meta,
        )

    def _dense(
        self, q: np.ndarray, n: int, filters: dict[str, Any] | None
    ) -> list[tuple[str, str, dict, float]]:
        collection = self._collection
        total = len(self._reader_view().chunks) or collection.count()  # equal after every finished index run
        if total == 0:
            return []
        where: dict[str, Any] | None = None
        if filters:
            clauses = [{k: v} for k, v in filters.items()]
            where = clauses[0] if len(clauses) == 1 else {"$and": clauses}
        res = collection.query(
            query_embeddings=[q.tolist()],
            n_results=min(n, total),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            (cid, text, meta, 1.0 - float(dist))
            for cid, text, meta, dist in zip(
                res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0], strict=True
            )
        ]

    @staticmethod
    def _sparse(
        tokens: list[str], n: int, filters: dict[str, Any] | None, view: _View
    ) -> tuple[list[tuple[str, float]], np.ndarray]:
        """(top ``n`` (chunk id, BM25 score) with score > 0, the score of every chunk by BM25 row)."""
        if not view.ids or not tokens:
            return [], np.zeros(len(view.ids))
        scores = view.bm25.get_scores(tokens)
        if filters:
            mask = np.array(
                [all(view.chunks[c].metadata.get(k) == v for k, v in filters.items()) for c in view.ids]
            )
            scores = np.where(mask, scores, 0.0)
        top = np.argsort(-scores)[:n]
        return [(view.ids[i], float(scores[i])) for i in top if scores[i] > 0], scores

    def warm(self) -> int:
        """Do now what the first search would: build the BM25 view (about 1 s at 10k chunks), open the Chroma
        collection and run the query encoder once, so a server's first question does not pay for it. Returns
        the number of chunks searches will see."""
        view = self._reader_view()
        self._collection.count()
        self.embedder.encode(["warm-up"], is_query=True)
        return len(view.chunks)

    def search(
        self, query: str, *, k: int = 5, mode: Mode = "hybrid", filters: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first. ``filters``: metadata key → exact value."""
        if mode not in MODES:
            raise KBError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        if k <= 0 or not query.strip():
            return []
        pool = max(4 * k, 20)
        view = self._reader_view()
        tokens = [t for t in tokenize(query) if t in view.bm25.vocab_dict] if view.ids else []
        if mode == "bm25":
            sparse, _ = self._sparse(tokens, k, filters, view)
            return [self._hit(c, view.chunks[c].text, view.chunks[c].metadata, s, None, s) for c, s in sparse]
        q = self.embedder.encode([query], is_query=True)[0]
        dense = self._dense(q, pool, filters)
        if mode == "dense":
            return [self._hit(c, t, m, s, s, None) for c, t, m, s in dense[:k]]
        sparse, all_bm25 = self._sparse(tokens, pool, filters, view)
        # Score the union of both candidate lists on both signals: the exact cosine of BM25-only candidates
        # (their vectors fetched from Chroma) and the BM25 score of dense-only ones.
        found = {c: (t, m, s) for c, t, m, s in dense}
        missing = [c for c, _ in sparse if c not in found]
        if missing:
            got = self._collection.get(ids=missing, include=["documents", "metadatas", "embeddings"])
            for cid, text, meta, emb in zip(
                got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
            ):
                found[cid] = (text, meta, float(np.dot(q, np.asarray(emb, dtype=np.float32))))
        cosine = {c: v[2] for c, v in found.items()}
        bm25 = {c: float(all_bm25[view.pos[c]]) if c in view.pos else 0.0 for c in found}
        weight = BM25_WEIGHT_IDENTIFIER if any(any(ch.isdigit() for ch in t) for t in tokens) else BM25_WEIGHT
        fused = zscore_fuse(cosine, bm25, weight)
        hits = []
        for cid in sorted(fused, key=lambda c: -fused[c])[:k]:
            text, meta, sim = found[cid]
            hits.append(self._hit(cid, text, meta, fused[cid], sim, bm25[cid]))
        return hits

    def stats(self) -> dict[str, Any]:
        chunks = self._reader_view().chunks
        size = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
        return {
            "name": self.name,
            "embedder": self.manifest["embedder"],
            "dim": self.manifest["dim"],
            "documents": len({c.doc_id for c in chunks.values()}),
            "chunks": len(chunks),
            "vectors": self._collection.count(),
            "paths": self.manifest["paths"],
            "chunking": self.manifest["chunking"],
            "chroma_url": self.manifest.get("chroma_url"),
            "created": self.manifest["created"],
            "updated": self.manifest["updated"],
            "disk_bytes": size,
        }


def list_kbs(home: Path | str | None = None) -> list[dict[str, Any]]:
    """Manifests of every KB under ``home`` (name, embedder, documents, chunks, updated, ...)."""
    root = _kb_root(home)
    if not root.exists():
        return []
    return [
        json.loads((d / "kb.json").read_text(encoding="utf-8"))
        for d in sorted(root.iterdir())
        if (d / "kb.json").exists()
    ]


def delete_kb(name: str, home: Path | str | None = None) -> None:
    """Delete KB ``name``: its Chroma collection and its folder."""
    kb = KnowledgeBase.open(name, home=home)
    with kb._writer_lock(60.0):
        kb._drop_contents()
        (kb.root / "kb.json").unlink()
    _forget_kb(name, home)
    kb._collection_obj = None
    if not kb.manifest.get("chroma_url"):
        _close_client(kb.root / "chroma")
    shutil.rmtree(kb.root, ignore_errors=True)


_KBS: dict[tuple[str, str, str | None], KnowledgeBase] = {}
_KBS_LOCK = threading.Lock()


def get_kb(name: str, *, home: Path | str | None = None, chroma_url: str | None = None) -> KnowledgeBase:
    """The process-wide :class:`KnowledgeBase` ``name`` (opened once; its models stay loaded)."""
    key = (name, str(_kb_root(home)), chroma_url)
    with _KBS_LOCK:
        kb = _KBS.get(key)
        if kb is None or not (kb.root / "kb.json").exists():
            kb = _KBS[key] = KnowledgeBase.open(name, home=home, chroma_url=chroma_url)
        return kb


def _forget_kb(name: str, home: Path | str | None) -> None:
    with _KBS_LOCK:
        for key in [k for k in _KBS if k[0] == name and k[1] == str(_kb_root(home))]:
            del _KBS[key]


def _print_hits(hits: list[Hit], out: Callable[[str], None] = print) -> None:
    for i, h in enumerate(hits, 1):
        out(f"{i}. {h.score:.4f} {h.doc_id} [{h.start_char}:{h.end_char}] {h.heading}\n   {h.text[:200]}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["index", "search"])
    ap.add_argument("arg", nargs="*")
    ap.add_argument("--kb", required=True)
    a = ap.parse_args()
    if a.command == "index":
        print(KnowledgeBase.open(a.kb, create=True).index(a.arg or None))
    else:
        _print_hits(get_kb(a.kb).search(" ".join(a.arg)))
