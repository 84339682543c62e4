"""Real processes: a SIGKILLed index run, two concurrent writers, a Chroma server, and a PDF document."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexing.kb import IndexReport, KnowledgeBase

from .conftest import FAST_EMBEDDER, assert_consistent

KILL_SCRIPT = """
import sys
import indexing.ingest as ingest
from indexing.kb import KnowledgeBase
ingest.BATCH_DOCS = 5  # many small commits, so the kill lands between two of them
kb = KnowledgeBase.open("k", home=sys.argv[1], embedder=sys.argv[3], create=True)
kb.index([sys.argv[2]], progress=False)
"""
# Indexes argv[2] into KB "k" under argv[1]; with argv[4] = a step of indexing.ingest (or Store.save_chunks),
# the process SIGKILLs itself as that step is entered for the 3rd time (save_chunks: the 1st, the run's end).
KILL_AT_SCRIPT = """
import os, signal, sys
import indexing.ingest as ingest
from indexing.kb import KnowledgeBase
ingest.BATCH_DOCS = 5
home, docs, embedder, point = sys.argv[1:5]
if point != "none":
    owner = ingest.Store if point == "save_chunks" else ingest
    real = getattr(owner, point)
    calls = [0]
    def killer(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 3 or point == "save_chunks":
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(owner, point, killer)
KnowledgeBase.open("k", home=home, embedder=embedder, create=True).index([docs], progress=False)
"""


def _many_docs(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"d{i:03d}.md").write_text(
            f"# Item {i}\n\nItem {i} costs {i * 3} yuan and ships in {i % 7} days.\n"
        )
    return root


def test_sigkill_mid_index_then_rerun_converges(tmp_path: Path) -> None:
    docs, home = _many_docs(tmp_path / "docs", 200), tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(home), str(docs), FAST_EMBEDDER],
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
    )
    docstore = home / "kb" / "k" / "docstore.json"
    deadline = time.monotonic() + 120
    while not docstore.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert (home / "kb" / "k" / ".dirty").exists()

    kb = KnowledgeBase.open("k", home=home)
    report = kb.index(progress=False)
    assert report.added + report.unchanged == 200 and report.deleted == 0 and report.added > 0
    got = kb.store.collection.get(include=["documents"])
    assert len(got["ids"]) == len(set(got["ids"])) == len(set(got["documents"])) == 200
    assert kb.index(progress=False).embedded_chunks == 0
    assert kb.search("Item 199 costs", k=1)[0].doc_id == "d199.md"


def _run(script: str, *args: object) -> int:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], env=env, timeout=300).returncode


@pytest.mark.parametrize("point", ["commit", "delete_old_versions", "save_chunks"])
def test_sigkill_while_replacing_documents_then_rerun_equals_a_clean_build(
    tmp_path: Path, point: str
) -> None:
    """Every document edited, then the re-index is killed -9: before the 3rd batch's commit (its new
    version written, not committed), before the 3rd batch's old versions are deleted (both versions in
    Chroma), or before the chunk store is written. The next run must end exactly like a clean build."""
    docs, home = _many_docs(tmp_path / "docs", 40), tmp_path / "home"
    assert _run(KILL_AT_SCRIPT, home, docs, FAST_EMBEDDER, "none") == 0
    for i in range(40):
        (docs / f"d{i:03d}.md").write_text(f"# Item {i}\n\nItem {i} now costs {i * 5} yuan, shipping free.\n")
    assert _run(KILL_AT_SCRIPT, home, docs, FAST_EMBEDDER, point) == -signal.SIGKILL
    assert (home / "kb" / "k" / ".dirty").exists()

    kb = KnowledgeBase.open("k", home=home)
    report = kb.index(progress=False)
    assert report.added + report.updated + report.unchanged == 40 and report.deleted == 0
    assert_consistent(kb)
    clean = KnowledgeBase.open("k", home=tmp_path / "clean", embedder=FAST_EMBEDDER, create=True)
    clean.index([docs], progress=False)
    mine, theirs = kb.store.collection.get(), clean.store.collection.get()
    assert sorted(zip(mine["ids"], mine["documents"], strict=True)) == sorted(
        zip(theirs["ids"], theirs["documents"], strict=True)
    )
    assert kb.store.read_chunks() == clean.store.read_chunks()
    assert kb.index(progress=False).embedded_chunks == 0
    assert "costs 195 yuan" in kb.search("Item 39 price", k=1)[0].text


def test_two_concurrent_writers_one_waits_and_neither_corrupts(tmp_path: Path) -> None:
    docs, home = _many_docs(tmp_path / "docs", 60), tmp_path / "home"
    kb_a = KnowledgeBase.open("c", home=home, embedder=FAST_EMBEDDER, create=True)
    kb_b = KnowledgeBase.open("c", home=home)
    reports: dict[str, IndexReport] = {}

    def run(name: str, kb: KnowledgeBase) -> None:
        reports[name] = kb.index([docs], progress=False)

    first = threading.Thread(target=run, args=("a", kb_a))
    first.start()
    while not (home / "kb" / "c" / ".dirty").exists():  # a is inside its locked section
        time.sleep(0.005)
    run("b", kb_b)
    first.join()
    assert (reports["a"].added, reports["b"].added, reports["b"].unchanged) == (60, 0, 60)
    assert kb_b.store.collection.count() == reports["b"].chunks == 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    exe = Path(sys.executable).parent / "chroma"
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(exe),
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/api/v2/heartbeat", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_kb_on_a_chroma_server(docs: Path, home: Path, chroma_server: str) -> None:
    kb = KnowledgeBase.open(
        "remote", home=home, embedder=FAST_EMBEDDER, chroma_url=chroma_server, create=True
    )
    assert kb.index([docs], progress=False).added == 6
    assert not (home / "kb" / "remote" / "chroma").exists()  # vectors live on the server
    again = KnowledgeBase.open("remote", home=home)  # the URL is remembered in kb.json
    assert again.manifest["chroma_url"] == chroma_server
    assert again.search("星光台灯多少钱", k=1)[0].doc_id == "products/prices.md"
    assert again.index(progress=False).embedded_chunks == 0


def _tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing ``text`` (ASCII), written by hand so the test needs no PDF library."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_documents_are_indexed(docs: Path, home: Path) -> None:
    (docs / "manual.pdf").write_bytes(
        _tiny_pdf("The fan remote pairs after holding the timer key for five seconds.")
    )
    kb = KnowledgeBase.open("pdf", home=home, embedder=FAST_EMBEDDER, create=True)
    assert kb.index([docs], progress=False).added == 7
    hit = kb.search("how do I pair the fan remote", k=1)[0]
    assert hit.doc_id == "manual.pdf" and "timer key" in hit.text
