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


def test_reliability_and_access_settings_from_yaml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cfg_file = tmp_path / "serve.yaml"
    cfg_file.write_text(
        "scoped_keys:\n  - {key: support, kbs: [shop]}\n  - {key: ops, reindex: true, load_adapters: true}\n"
        "exposed_kbs: [wiki]\nmax_tokens_limit: 512\ndocs: open\n"
    )
    monkeypatch.setenv("IMPRINT_ADAPTER_ROOTS", f"{tmp_path}/a, {tmp_path}/b")
    monkeypatch.setenv("IMPRINT_SHUTDOWN_GRACE_S", "1.5")
    monkeypatch.setenv("IMPRINT_EXPOSED_KBS", "wiki,faq")
    cfg = ServeConfig.load(cfg_file, host="0.0.0.0")  # scoped keys alone count as keys
    assert [(k.key, k.kbs, k.reindex, k.load_adapters, k.jobs) for k in cfg.scoped_keys] == [
        ("support", ["shop"], False, False, False),
        ("ops", ["*"], True, True, False),
    ]
    assert cfg.exposed_kbs == ["wiki", "faq"] and cfg.max_tokens_limit == 512 and cfg.docs == "open"
    assert cfg.allowed_adapter_roots() == [tmp_path / "a", tmp_path / "b"] and cfg.shutdown_grace_s == 1.5
    monkeypatch.delenv("IMPRINT_ADAPTER_ROOTS")
    assert ServeConfig.load(home=tmp_path).allowed_adapter_roots() == [tmp_path / "adapters"]
    with pytest.raises(ConfigError, match="also listed in api_keys"):
        ServeConfig.load(api_keys=["k"], scoped_keys=[{"key": "k"}])
    with pytest.raises(ConfigError, match="max_tokens_limit"):
        ServeConfig.load(max_tokens_limit=0)
