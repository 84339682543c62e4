"""One incremental index run: read the files, embed what is new or changed, delete what is gone.

    imprint index docs/ --kb shop          # the command over KnowledgeBase.index, which calls sync()

``pytest tests/indexing/test_ingest.py`` (behaviour) and ``tests/indexing/test_processes.py`` (kill -9).

Only new or changed documents go through the llama-index ``IngestionPipeline`` (chunk → embed → Chroma), in
batches. A changed document is replaced add-then-delete, so a search during the run finds its old text or its
new text, never neither:

1. its new version's chunks are embedded and written to Chroma under new ids (``{doc_id}::{version}::{n}``),
   next to the old version's;
2. the docstore (the commit record) is written with the new version's hash;
3. the old version's chunks are deleted from Chroma;
4. at the end the chunk store is written, which swaps in the new BM25 view (``indexing/search.py``).

A kill at any point leaves ``.dirty`` behind; the next run's :func:`indexing.locking.reconcile` keeps exactly
the committed versions (after 1: the old one; after 2 or 3: the new one), so it converges to a clean build.
Unreadable files are skipped and reported (``IndexReport.skipped``); what the KB holds from them is kept.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexing.chunking import ImprintNodeParser
from indexing.embeddings import ImprintEmbedding
from indexing.errors import EmbedderMismatchError, KBError
from indexing.locking import clear_dirty, is_dirty, mark_dirty, reconcile, writer_lock
from indexing.readers import Skipped, read_paths
from indexing.store import Store, StoredChunk, make_chunk, now

BATCH_DOCS = 64  # documents per commit: a crash loses at most one batch of embedding work


@dataclass(frozen=True)
class IndexReport:
    added: int
    updated: int
    deleted: int
    unchanged: int  # documents read and unchanged, plus those kept because their file was skipped
    chunks: int  # chunks in the KB after the run
    seconds: float = 0.0
    embedded_chunks: int = 0  # chunks embedded by this run (0 on an unchanged re-run)
    files: int = 0  # supported files found under the paths (read or skipped)
    skipped: list[Skipped] = field(default_factory=list)  # files not read: path + reason (with the fix)
    empty_paths: list[str] = field(default_factory=list)  # given paths with no supported file in them

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def refresh_manifest(store: Store, name: str) -> None:
    """Re-read kb.json: another process may have re-indexed (new paths) or rebuilt the KB since we opened."""
    on_disk = store.read_manifest()
    if on_disk is None:
        return
    if on_disk["embedder"] != store.manifest["embedder"]:
        raise EmbedderMismatchError(
            f"KB {name!r} was rebuilt with embedder {on_disk['embedder']!r} by another process; "
            "open it again (restart the service) to use it"
        )
    on_disk["chroma_url"] = store.manifest.get("chroma_url")
    store.manifest.clear()
    store.manifest.update(on_disk)


def _kept_sources(docstore: Any, doc_ids: set[str], skipped: list[Skipped]) -> set[str]:
    """Of ``doc_ids`` (indexed, not read this time), those that came from a skipped file or folder."""
    paths = [s.path for s in skipped]
    kept = set()
    for doc_id in doc_ids:
        doc = docstore.get_document(doc_id, raise_error=False)
        source = str(doc.metadata.get("source", "")) if doc is not None else ""
        if source and any(source == p or source.startswith(p.rstrip("/") + "/") for p in paths):
            kept.add(doc_id)
    return kept


def sync(
    store: Store,
    name: str,
    embedder: ImprintEmbedding,
    paths: list[str | Path] | str | Path | None,
    *,
    rebuild: bool,
    progress: bool,
    lock_timeout: float,
) -> tuple[IndexReport, bool]:
    """Bring KB ``name`` in line with the files under ``paths`` (None: the remembered ones).

    Returns the report and whether anything in the KB changed.
    """
    t0 = time.perf_counter()
    root = store.root
    if isinstance(paths, str | Path):  # one path given as such, not as a list of characters
        paths = [paths]
    with writer_lock(root, name, lock_timeout):
        refresh_manifest(store, name)
        roots = (
            [str(Path(p).expanduser().resolve()) for p in paths] if paths else list(store.manifest["paths"])
        )
        if not roots:
            raise KBError(
                f"KB {name!r} has no remembered paths; pass the folders to index "
                f"(`imprint index PATH --kb {name}`)",
                param="paths",
            )
        found = read_paths([Path(p) for p in roots])
        if roots != store.manifest["paths"]:  # remembered first, so a re-run after a crash knows them
            store.manifest["paths"] = roots
            store.save_manifest()
        if rebuild:
            mark_dirty(root)
            store.drop_contents()
        docstore = store.load_docstore()
        chunks = store.read_chunks()
        if is_dirty(root) or chunks is None or store.collection.count() != len(chunks):
            mark_dirty(root)
            chunks = reconcile(store, docstore)

        committed = {doc_id: h for h, doc_id in docstore.get_all_document_hashes().items()}
        docs = found.documents
        for doc in docs:  # keep "modified" = when the content last changed, not when the file was touched
            prev = docstore.get_document(doc.id_, raise_error=False) if doc.id_ in committed else None
            if prev is not None and prev.metadata.get("content_sha256") == doc.metadata["content_sha256"]:
                doc.metadata["modified"] = prev.metadata.get("modified", doc.metadata["modified"])
        new_ids = {d.id_ for d in docs}
        kept = _kept_sources(docstore, set(committed) - new_ids, found.skipped) if found.skipped else set()
        todo = [d for d in docs if committed.get(d.id_) != d.hash]
        added = sum(1 for d in todo if d.id_ not in committed)
        deleted_ids = sorted(set(committed) - new_ids - kept)
        embedded, changed = 0, False
        if todo or deleted_ids or is_dirty(root):
            mark_dirty(root)
            embedded = apply(store, embedder, docstore, chunks, todo, deleted_ids, progress)
            store.manifest.update(
                updated=now(), documents=len(new_ids | kept), chunks=len(chunks), dim=embedder.dim
            )
            store.save_manifest()
            clear_dirty(root)
            changed = True
    report = IndexReport(
        added=added,
        updated=len(todo) - added,
        deleted=len(deleted_ids),
        unchanged=len(docs) - len(todo) + len(kept),
        chunks=len(chunks),
        seconds=round(time.perf_counter() - t0, 3),
        embedded_chunks=embedded,
        files=found.files,
        skipped=list(found.skipped),
        empty_paths=list(found.empty_paths),
    )
    return report, changed


# The steps of a batch are functions of their own so the kill -9 tests can stop a real process between them.
def write_new_versions(pipeline: Any, batch: list[Any]) -> list[Any]:
    """Chunk, embed and add the batch's new versions to Chroma (the old versions stay searchable)."""
    return list(pipeline.run(documents=batch))


def commit(store: Store, docstore: Any, batch: list[Any]) -> None:
    """Record the batch's new versions in the docstore: from here on they are the KB's content."""
    docstore.set_document_hashes({d.id_: d.hash for d in batch})
    docstore.add_documents(batch)
    store.save_docstore(docstore)


def delete_old_versions(collection: Any, stale_ids: list[str]) -> None:
    if stale_ids:
        collection.delete(ids=stale_ids)


def apply(
    store: Store,
    embedder: ImprintEmbedding,
    docstore: Any,
    chunks: dict[str, StoredChunk],
    todo: list[Any],
    deleted_ids: list[str],
    progress: bool,
) -> int:
    """Delete ``deleted_ids``, add/replace ``todo`` (add-then-delete), write the chunk store.

    Returns the number of chunks embedded."""
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.vector_stores.chroma import ChromaVectorStore
    from rich.progress import Progress

    collection = store.collection
    by_doc: dict[str, list[str]] = {}
    for cid, chunk in chunks.items():
        by_doc.setdefault(chunk.doc_id, []).append(cid)
    for doc_id in deleted_ids:  # documents gone from the folders: nothing replaces them
        collection.delete(where={"document_id": doc_id})
        docstore.delete_document(doc_id, raise_error=False)
        for cid in by_doc.pop(doc_id, []):
            del chunks[cid]
    if deleted_ids:
        store.save_docstore(docstore)
    # No docstore in the pipeline: its upsert strategy deletes a changed document's vectors BEFORE embedding
    # the new ones (the document vanished from search meanwhile). No cache: nothing is re-run, and it kept
    # a copy of every node for the whole run.
    pipeline = IngestionPipeline(
        transformations=[ImprintNodeParser(**store.manifest["chunking"]), embedder],
        vector_store=ChromaVectorStore(chroma_collection=collection),
        disable_cache=True,
    )
    embedded = 0
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"indexing {store.manifest['name']}", total=len(todo))
        for i in range(0, len(todo), BATCH_DOCS):
            batch = todo[i : i + BATCH_DOCS]
            nodes = write_new_versions(pipeline, batch)
            commit(store, docstore, batch)
            new_ids = {n.id_ for n in nodes}
            stale = [cid for d in batch for cid in by_doc.get(d.id_, []) if cid not in new_ids]
            delete_old_versions(collection, stale)
            for cid in stale:
                del chunks[cid]
            for node in nodes:
                chunks[node.id_] = make_chunk(node.get_content(), dict(node.metadata), node.ref_doc_id)
                by_doc.setdefault(chunks[node.id_].doc_id, []).append(node.id_)
            embedded += len(nodes)
            bar.advance(task, len(batch))
    store.save_chunks(chunks)
    return embedded
