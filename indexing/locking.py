"""One writer per knowledge base (an fcntl lock), and repairing what a killed writer left behind.

Nothing to run here: ``KnowledgeBase.index`` uses it; ``pytest tests/indexing/test_locking.py`` and the
kill -9 tests in ``tests/indexing/test_processes.py`` exercise it.

- ``.lock``  writers hold an exclusive fcntl lock on it (it names the holder's pid while held);
- ``.dirty`` exists while a run is changing Chroma, the docstore or the chunk store. If a run dies, it stays
  behind and the next run calls :func:`reconcile` first.

Why a re-run converges: the docstore is the commit record (document id → hash of the indexed version) and
every chunk in Chroma carries its document's version (``doc_version``, also in its id) and chunk count
(``n_chunks``). :func:`reconcile` keeps exactly the chunks of committed versions, forgets a committed
document whose chunks are incomplete (so the run re-embeds it) and rebuilds the chunk store from Chroma.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from indexing.chunking import doc_version
from indexing.errors import KBLockedError
from indexing.store import Store, StoredChunk, make_chunk


@contextmanager
def writer_lock(root: Path, name: str, timeout: float, *, quiet: bool = False) -> Iterator[None]:
    """Hold KB ``name``'s writer lock; wait up to ``timeout`` s for another writer, then KBLockedError."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
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
                        f"KB {name!r} is being indexed by {holder}; waited {timeout:.0f} s. "
                        "Try again when it finishes (or stop a stuck process)",
                        param="name",
                    ) from None
                if not told and not quiet:
                    print(f"KB {name!r} is locked by {holder}; waiting...", file=sys.stderr)
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


def dirty_path(root: Path) -> Path:
    return root / ".dirty"


def mark_dirty(root: Path) -> None:
    dirty_path(root).touch()


def clear_dirty(root: Path) -> None:
    dirty_path(root).unlink(missing_ok=True)


def is_dirty(root: Path) -> bool:
    return dirty_path(root).exists()


def _committed(docstore: Any) -> dict[str, tuple[str, str | None]]:
    """Committed document id → (version, content sha256) according to the docstore."""
    out: dict[str, tuple[str, str | None]] = {}
    for doc_hash, doc_id in docstore.get_all_document_hashes().items():
        doc = docstore.get_document(doc_id, raise_error=False)
        out[doc_id] = (doc_version(doc_hash), doc.metadata.get("content_sha256") if doc is not None else None)
    return out


def _is_committed(meta: dict[str, Any], committed: dict[str, tuple[str, str | None]]) -> bool:
    doc_id = str(meta.get("document_id"))
    if doc_id not in committed:
        return False
    version, sha = committed[doc_id]
    if "doc_version" in meta:
        return meta["doc_version"] == version
    # Chunks written before versions were stamped ({doc_id}::{n} ids): the content hash decides.
    return meta.get("content_sha256") == sha


def reconcile(store: Store, docstore: Any) -> dict[str, StoredChunk]:
    """Make Chroma, the docstore and the chunk store agree after an interrupted run; returns the chunks.

    Drops chunks of uncommitted versions (a new version written but not committed, or an old one committed
    over but not yet deleted) and of deleted documents; forgets committed documents with missing chunks.
    """
    collection = store.collection
    got = collection.get(include=["metadatas", "documents"])
    committed = _committed(docstore)
    per_doc: dict[str, list[int]] = {}
    orphans: list[str] = []
    for i, (cid, meta) in enumerate(zip(got["ids"], got["metadatas"], strict=True)):
        if _is_committed(meta, committed):
            per_doc.setdefault(str(meta.get("document_id")), []).append(i)
        else:
            orphans.append(cid)
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
    store.save_docstore(docstore)
    chunks = {
        got["ids"][i]: make_chunk(got["documents"][i], got["metadatas"][i])
        for rows in per_doc.values()
        for i in rows
    }
    store.save_chunks(chunks)
    return chunks
