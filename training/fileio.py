"""Writing files so that nothing half-written is ever seen, and reading JSON Lines the way the format says.

    from training.fileio import atomic_write, publish_dir, read_jsonl
    atomic_write(path, json.dumps(obj))               # temp file next to path, fsync, rename
    with publish_dir(target, replace=True) as tmp:    # fill tmp; on success it becomes target in one rename
        ...
    for lineno, text in read_jsonl_lines(path): ...   # split on "\\n" only (U+2028 inside a string is data)

Every writer in Imprint (KB manifests, reports, adapters, checkpoints, converted models) goes through here, so
a crash leaves the old version or the new one, never a mix. Temp names start with ``.`` and carry
``TMP_MARK``, so :func:`clean_orphans` can sweep what a killed process left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any, *, indent: int | None = 2) -> None:
    atomic_write(path, json.dumps(payload, ensure_ascii=False, indent=indent))


@contextlib.contextmanager
def publish_dir(target: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temp folder next to ``target``; when the block succeeds it is renamed to ``target``.

    ``replace=False``: if ``target`` already exists (another process published first) the new copy is
    dropped. ``replace=True``: the old ``target`` is swapped out (two renames) and removed. On an exception
    the temp folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{TMP_MARK}", dir=target.parent))
    try:
        yield tmp
        with contextlib.suppress(OSError):  # fails only when the target exists (published meanwhile)
            tmp.rename(target)
            return
        if replace:
            trash = target.parent / f".{target.name}{TMP_MARK}old-{os.getpid()}-{time.monotonic_ns()}"
            target.rename(trash)
            tmp.rename(target)
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def clean_orphans(folder: Path, *, older_than_s: float = 3600.0) -> list[Path]:
    """Remove temp files/folders (``.NAME.tmp-*``) a killed process left in ``folder``; returns them.

    Only entries untouched for ``older_than_s`` go, so a writer still working next door is never hit.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    now = time.time()
    for entry in folder.iterdir():
        if not (entry.name.startswith(".") and TMP_MARK in entry.name):
            continue
        try:
            if now - entry.stat().st_mtime < older_than_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def read_jsonl_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` for each non-blank line of a JSON Lines file.

    Lines end at ``\\n`` only (the JSON Lines rule): ``str.splitlines`` would also break at U+2028, U+2029
    and U+0085, which ``json.dumps(..., ensure_ascii=False)`` writes inside strings. Raises
    ``UnicodeDecodeError`` for files that are not UTF-8 (callers name the file and the fix).
    """
    text = Path(path).read_bytes().decode("utf-8-sig")
    for n, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield n, line.rstrip("\r")
