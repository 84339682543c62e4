"""Keep absolute server paths out of responses: a client sees paths relative to the KB's document folder
or the adapter folder they are in, never where the server keeps them.

    redactor = PathRedactor([Path("/srv/imprint/adapters")])
    redactor.text("adapter /srv/imprint/adapters/fam-v2: missing imprint.json")  # "adapter fam-v2: missing…"
    redactor.text("cannot read /etc/shadow")                                     # "cannot read …/shadow"
    public_source("/srv/docs/shop/prices.md", ["/srv/docs"])                     # "shop/prices.md"

Error bodies (``service.errors``), knowledge-base search hits and re-index reports, citations and adapter
responses all pass through here. A path under a known root becomes relative to it; any other absolute path
whose top folder exists on this machine keeps only its last part (route names like ``/v1/models`` stay).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# An absolute path: starts after whitespace, a quote or a bracket (so URLs and relative paths stay intact).
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])/[^\s'\"`,;()\[\]{}<>]+")


def _top_exists(path: str) -> bool:
    top = path.strip("/").split("/", 1)[0]
    try:
        return bool(top) and (Path("/") / top).exists()
    except OSError:
        return False


class PathRedactor:
    def __init__(self, roots: Iterable[Path | str] = ()) -> None:
        resolved = {str(Path(r)).rstrip("/") for r in roots if str(r)}
        resolved |= {str(Path(r).resolve()).rstrip("/") for r in roots if str(r)}
        # Longest first, so a root inside another root wins.
        self.roots = sorted((r for r in resolved if r), key=len, reverse=True)

    def path(self, path: str) -> str:
        trail = path[len(path.rstrip(".:")) :]  # sentence punctuation after the path stays
        core = path[: len(path) - len(trail)] if trail else path
        for root in self.roots:
            if core == root:
                return Path(root).name + trail
            if core.startswith(root + "/"):
                return core[len(root) + 1 :] + trail
        if not _top_exists(core):
            return path
        return "…/" + Path(core).name + trail

    def text(self, text: str) -> str:
        if "/" not in text:
            return text
        return _ABSOLUTE.sub(lambda m: self.path(m.group(0)), text)

    def data(self, value: Any) -> Any:
        """``value`` with every string redacted (dicts, lists and tuples are walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.data(v) for v in value)
        return value


def public_source(source: str, roots: Iterable[str]) -> str:
    """A document's ``source`` relative to the indexed folder it came from (its name when a single file
    was indexed), so citations name the document without revealing where the server keeps it."""
    if not source.startswith("/"):
        return source
    for root in sorted(roots, key=len, reverse=True):
        root = root.rstrip("/")
        if source == root:
            return Path(source).name
        if source.startswith(root + "/"):
            return source[len(root) + 1 :]
    return Path(source).name


def kb_roots(kb: Any) -> list[str]:
    """The folders a KB was indexed from (its manifest's remembered paths)."""
    manifest = getattr(kb, "manifest", None) or {}
    return [str(p) for p in manifest.get("paths", [])]
