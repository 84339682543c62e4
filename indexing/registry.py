"""The knowledge bases of one ``$IMPRINT_HOME``: list them, delete one, and share one instance per process.

    imprint kb list | imprint kb stats shop | imprint kb delete shop --yes     # the commands over this module

``get_kb`` opens a KB once per process (its embedder and BM25 view stay loaded for every later search); the
service, RAFT and the search command use it. Tests: ``pytest tests/indexing/test_registry.py``.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

from indexing.errors import KBNotFoundError
from indexing.kb import KnowledgeBase
from indexing.locking import writer_lock
from indexing.store import Store, check_name, close_client, kb_root, read_manifest

_KBS: dict[tuple[str, str, str | None], KnowledgeBase] = {}
_KBS_LOCK = threading.Lock()


def list_kbs(home: Path | str | None = None) -> list[dict[str, Any]]:
    """Manifests of every KB under ``home`` (name, embedder, documents, chunks, updated, ...)."""
    root = kb_root(home)
    if not root.exists():
        return []
    return [read_manifest(d / "kb.json") for d in sorted(root.iterdir()) if (d / "kb.json").exists()]


def get_kb(name: str, *, home: Path | str | None = None, chroma_url: str | None = None) -> KnowledgeBase:
    """The process-wide :class:`KnowledgeBase` ``name`` (opened once; its models stay loaded)."""
    key = (check_name(name), str(kb_root(home)), chroma_url)
    with _KBS_LOCK:
        kb = _KBS.get(key)
        if kb is None or not (kb.root / "kb.json").exists():
            kb = _KBS[key] = KnowledgeBase.open(name, home=home, chroma_url=chroma_url)
        return kb


def forget_kb(name: str, home: Path | str | None = None) -> None:
    """Drop KB ``name`` from the process-wide cache (after it was deleted)."""
    with _KBS_LOCK:
        for key in [k for k in _KBS if k[0] == name and k[1] == str(kb_root(home))]:
            del _KBS[key]


def delete_kb(name: str, home: Path | str | None = None) -> None:
    """Delete KB ``name``: its Chroma collection and its folder (waits up to 60 s for a running writer)."""
    root = kb_root(home) / check_name(name)
    if not (root / "kb.json").exists():
        raise KBNotFoundError(
            f"no knowledge base {name!r} under {root.parent}; see `imprint kb list`", param="name"
        )
    store = Store(root, read_manifest(root / "kb.json"))
    with writer_lock(root, name, 60.0):
        store.drop_contents()
        (root / "kb.json").unlink()
    forget_kb(name, home)
    if not store.manifest.get("chroma_url"):
        close_client(root / "chroma")
    shutil.rmtree(root, ignore_errors=True)
