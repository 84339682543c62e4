"""The reading skill (training/reader.py) on the real tiny Phi-3 and a real Chroma knowledge base: a --kb job
builds the reader once, starts its LoRA from it and trains a lean curriculum; the next job reuses it; the
reader folder describes itself; ``reader=False`` learns to read in the job as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import training.reader as reader_module
from training.raft import DEFAULT_READING_WITH_KB, RAFT_UPDATES
from training.reader import REPLAY, UPDATES, WEIGHTS, Reader, reader_key, start_from
from training.train import TrainConfig, train

HANDBOOK = "# 家庭手册\n\n老大是哥哥JIM，今年8岁。老二是妹妹LUCY。我们家的猫叫kitty，喜欢晒太阳。\n"


@pytest.fixture
def family_kb(tmp_path: Path):
    from indexing.kb import KnowledgeBase

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "family.md").write_text(HANDBOOK, "utf-8")
    kb = KnowledgeBase.open("reader-family", home=tmp_path / "home", create=True)
    kb.index([docs], progress=False)
    return lambda q: kb.search(q, k=3)


def _job(tmp_path: Path, train_file: Path, name: str, **kw) -> TrainConfig:
    return TrainConfig.build(
        training_file=train_file, base_model="tiny-phi3", kb="reader-family", output=tmp_path / name,
        progress=False, memorization_check=0, n_epochs=1, **kw,
    )  # fmt: skip


def test_a_kb_job_builds_the_reader_once_and_every_job_starts_from_it(
    family_train_file: Path, family_kb, tiny_phi3_base, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(reader_module, "readers_root", lambda: tmp_path / "readers")
    cfg = _job(tmp_path, family_train_file, "first")
    key = reader_key(cfg, tiny_phi3_base)
    events: list[tuple[str, dict]] = []
    first = train(cfg, search=family_kb, on_event=lambda kind, data: events.append((kind, data)))
    built = tmp_path / "readers" / key
    # the reader folder describes itself and is complete (published in one rename, no build leftovers)
    assert {WEIGHTS, "reader.json", "README.md", "imprint.json", "results.csv", "loss.png"} <= {
        p.name for p in built.iterdir()
    }
    assert [p.name for p in (tmp_path / "readers").iterdir()] == [key]
    described = json.loads((built / "reader.json").read_text("utf-8"))
    assert described["key"] == key and described["base_model"] == "tiny-phi3" and described["lora_r"] == 16
    assert described["reading_examples"] == 64 and described["build_seconds"] > 0
    assert "built in" in capsys.readouterr().err
    told = [d["message"] for k, d in events if k == "reader"]  # a job service shows them as job events
    assert len(told) == 2 and told[0].startswith(f"reading skill: building the reader {key}")
    # the job trained the lean curriculum on top of it, and says so
    hp = json.loads((first / "imprint.json").read_text("utf-8"))["hyperparameters"]
    assert (hp["reader"], hp["reading_examples"], hp["raft_updates"]) == (key, REPLAY, UPDATES)
    # the next job finds it: nothing is rebuilt
    stamp = (built / WEIGHTS).stat().st_mtime_ns
    train(_job(tmp_path, family_train_file, "second", seed=3), search=family_kb)
    assert (built / WEIGHTS).stat().st_mtime_ns == stamp
    assert "starting from the cached reader" in capsys.readouterr().err


def test_start_from_loads_the_reader_weights_into_a_fresh_lora(tiny_phi3_base, tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file

    from training.models import load_base_model

    def fresh():
        model, _ = load_base_model(tiny_phi3_base)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=list(tiny_phi3_base.target_modules))
        return get_peft_model(model, lora)

    source = fresh()
    weights = {k: torch.randn_like(v) for k, v in get_peft_model_state_dict(source).items()}
    (tmp_path / "r").mkdir()
    save_file(weights, str(tmp_path / "r" / WEIGHTS))
    target = fresh()
    start_from(target, Reader(tmp_path / "r", "k", False, 1.0))
    loaded = get_peft_model_state_dict(target)
    assert loaded.keys() == weights.keys() and all(torch.equal(loaded[k], weights[k]) for k in weights)
    # weights of another LoRA shape are refused with the folder to delete
    save_file({"x.lora_A.weight": torch.zeros(1)}, str(tmp_path / "r" / WEIGHTS))
    with pytest.raises(RuntimeError, match="delete"):
        start_from(fresh(), Reader(tmp_path / "r", "k", False, 1.0))


def test_without_the_reader_the_job_learns_to_read_itself(
    family_train_file: Path, family_kb, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(reader_module, "readers_root", lambda: tmp_path / "readers")
    out = train(_job(tmp_path, family_train_file, "own", reader=False), search=family_kb)
    hp = json.loads((out / "imprint.json").read_text("utf-8"))["hyperparameters"]
    assert (hp["reader"], hp["reading_examples"], hp["raft_updates"]) == (
        None, DEFAULT_READING_WITH_KB, RAFT_UPDATES,
    )  # fmt: skip
    assert not (tmp_path / "readers").exists()
