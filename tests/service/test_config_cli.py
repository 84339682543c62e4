"""ServeConfig precedence and validation; `imprint serve` refuses unsafe binds before loading anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli import app
from service.config import ConfigError, ServeConfig, is_loopback


def test_defaults_yaml_env_flags_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg_file = tmp_path / "serve.yaml"
    cfg_file.write_text("port: 9001\nretrieval_k: 7\nkb: from-yaml\n")
    monkeypatch.setenv("IMPRINT_KB", "from-env")
    monkeypatch.setenv("IMPRINT_API_KEYS", "k1, k2,")
    cfg = ServeConfig.load(cfg_file, port=9002)
    assert (cfg.port, cfg.retrieval_k, cfg.kb, cfg.api_keys) == (9002, 7, "from-env", ["k1", "k2"])
    assert ServeConfig.load().port == 8000


def test_every_problem_in_one_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IMPRINT_API_KEYS", raising=False)
    with pytest.raises(ConfigError) as err:
        ServeConfig.load(adapters=[tmp_path / "nope"], engine="vllm", host="0.0.0.0")
    text = str(err.value)
    assert text.startswith("invalid serve config:") and text.count("\n  ") == 3  # one line per problem
    for part in ("not a directory", "--vllm-url", "IMPRINT_API_KEYS"):
        assert part in text
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("port: [1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        ServeConfig.load(bad_yaml)
    with pytest.raises(ConfigError, match="retrieval_k"):
        ServeConfig.load(retrieval_k=0)


def test_loopback_detection():
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "example.com"))


def test_serve_cli_refuses_public_bind_without_keys(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("IMPRINT_API_KEYS", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "not loopback but no API keys" in result.output
