"""The recipe on the real tiny Phi-3 (real peft training): config, the adapter folder, early stopping keeping
the best epoch, packing vs padding, gradient checkpointing, and the --kb contract."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from training.config import field_help
from training.train import ConfigError, TrainConfig, train

EXPECTED_FILES = {
    "adapter_model.safetensors",
    "adapter_config.json",
    "imprint.json",
    "chat_template.jinja",
    "knowledge.md",
    "tokenizer.json",
    "tokenizer_config.json",
    "results.csv",
    "metrics.json",
    "loss.png",
}


def _tiny(tmp_path: Path, family_train_file: Path, name: str, **kw) -> TrainConfig:
    return TrainConfig.build(
        training_file=family_train_file, base_model="tiny-phi3", output=tmp_path / name, progress=False, **kw
    )


def _rows(adapter: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((adapter / "results.csv").open()))


def test_defaults_are_written_once_and_every_field_explains_itself(
    family_train_file: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = TrainConfig.build(training_file=family_train_file)
    assert (cfg.seed, cfg.max_seq_len, cfg.lora_r, cfg.lora_alpha, cfg.alpha) == (42, 1024, 16, None, 32)
    assert TrainConfig.build(training_file=family_train_file, lora_r=8).alpha == 16  # 2 × r, one place
    assert TrainConfig.build(training_file=family_train_file, lora_r=8, lora_alpha=8).alpha == 8
    for name in TrainConfig.model_fields:
        assert TrainConfig.model_fields[name].description, name
    assert field_help(TrainConfig, "seed").endswith("[default: 42]")
    yaml = tmp_path / "train.yaml"
    yaml.write_text(f"training_file: {family_train_file}\nseed: 3\nn_epochs: 4\n", encoding="utf-8")
    monkeypatch.setenv("IMPRINT_TRAIN_SEED", "7")  # env beats YAML, flags beat both
    cfg = TrainConfig.load(yaml)
    assert (cfg.seed, cfg.n_epochs) == (7, 4)
    assert TrainConfig.load(yaml, seed=9).seed == 9


def test_config_accepts_auto_strings_and_collects_every_problem(
    family_train_file: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig.build(
        training_file=str(family_train_file), n_epochs="auto", batch_size="4", learning_rate_multiplier="0.5"
    )
    assert (cfg.n_epochs, cfg.batch_size, cfg.learning_rate_multiplier) == ("auto", 4, 0.5)
    with pytest.raises(ConfigError) as err:
        TrainConfig.build(
            training_file=tmp_path / "missing.jsonl", n_epochs=0, lora_r=128, suffix="bad name!", lora_alpha=0
        )
    for field in ("training_file", "n_epochs", "lora_r", "suffix", "lora_alpha"):
        assert field in str(err.value)
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig.build(training_file=family_train_file, batch_size="many")


def test_kb_without_a_search_function_is_a_config_error(family_train_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="search"):
        train(_tiny(tmp_path, family_train_file, "kb", kb="family-kb"))
    assert not (tmp_path / "kb").exists()


def test_adapter_folder_describes_itself(tiny_phi3_adapter: Path, family_train_file: Path) -> None:
    from training.adapter import list_adapters, read_adapter
    from training.chat import PHI4_CHAT_TEMPLATE

    assert {p.name for p in tiny_phi3_adapter.iterdir()} >= EXPECTED_FILES
    info = read_adapter(tiny_phi3_adapter)
    assert info.name == "tiny-family" and info.base_model == "tiny-phi3"
    assert info.base_revision.startswith("sha256:") and info.chat_template == PHI4_CHAT_TEMPLATE
    assert info.data_sha256 == hashlib.sha256(family_train_file.read_bytes()).hexdigest()
    assert "老大是谁?" in info.knowledge and "哥哥JIM是老大" in info.knowledge_text
    assert (tiny_phi3_adapter / "knowledge.md").read_text(encoding="utf-8") == info.knowledge_text
    hp, m = info.hyperparameters, info.metrics
    assert hp["n_epochs"] == 3 and hp["batch_size"] == 3 and hp["packing"] is True  # auto: a token budget
    assert "budget" in hp["reasons"]["batch_size"] and hp["lora_alpha"] == 32
    rows = _rows(tiny_phi3_adapter)
    assert [int(r["step"]) for r in rows] == list(range(1, m["steps"] + 1))
    assert m["steps"] == 3 * m["epochs_run"] and m["useful_tokens"] == m["computed_tokens"] > 0  # no padding
    assert sum(1 for r in rows if r["valid_loss"]) == m["epochs_run"]  # validated once per epoch
    assert info.created_at.endswith("Z") and info.imprint_version
    peft_cfg = json.loads((tiny_phi3_adapter / "adapter_config.json").read_text())
    assert peft_cfg["r"] == 16 and peft_cfg["lora_alpha"] == 32 and not peft_cfg.get("modules_to_save")
    assert set(peft_cfg["target_modules"]) == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    assert info.path in [a.path for a in list_adapters(tiny_phi3_adapter.parent)]


def test_early_stopping_keeps_the_best_epochs_weights(
    tmp_path: Path, family_train_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    import training.loss

    accuracies = iter([0.5, 0.9, 0.6, 0.7, 0.95, 0.95])
    real = training.loss.evaluate

    def scripted(*args, **kw):
        loss, _ = real(*args, **kw)
        return loss, next(accuracies)

    monkeypatch.setattr(training.loss, "evaluate", scripted)
    # constant lr: a linear decay would differ between a 6-epoch and a 2-epoch plan
    same = {"lr_schedule": "constant", "batch_size": 3}
    stopped = train(
        _tiny(tmp_path, family_train_file, "stopped", n_epochs=6, early_stopping_patience=2, **same)
    )
    m = json.loads((stopped / "metrics.json").read_text())
    assert (m["epochs_run"], m["best_epoch"], m["kept_epoch"], m["stopped_early"]) == (4, 2, 2, True)
    assert m["valid_mean_token_accuracy"] == 0.9 and "keeping epoch 2" in m["early_stopping"]
    monkeypatch.setattr(training.loss, "evaluate", real)
    # the same job run for exactly 2 epochs ends with the weights the early-stopped job kept
    two = train(_tiny(tmp_path, family_train_file, "two", n_epochs=2, early_stopping_patience=0, **same))
    kept = load_file(str(stopped / "adapter_model.safetensors"))
    ref = load_file(str(two / "adapter_model.safetensors"))
    assert kept.keys() == ref.keys() and all((kept[k] - ref[k]).abs().max() < 1e-6 for k in kept)


def test_packing_padding_and_gradient_checkpointing_train_the_same(
    tmp_path: Path, family_train_file: Path
) -> None:
    common = {"n_epochs": 2, "batch_size": 3, "early_stopping_patience": 0}
    runs = {
        "packed": train(_tiny(tmp_path, family_train_file, "packed", **common)),
        "padded": train(_tiny(tmp_path, family_train_file, "padded", packing=False, **common)),
        "ckpt": train(_tiny(tmp_path, family_train_file, "ckpt", gradient_checkpointing=True, **common)),
    }
    losses = {k: [float(r["train_loss"]) for r in _rows(v)] for k, v in runs.items()}
    assert len(losses["packed"]) == 6
    for other in ("padded", "ckpt"):
        assert losses[other] == pytest.approx(losses["packed"], abs=1e-4), other
    padded = json.loads((runs["padded"] / "metrics.json").read_text())
    assert padded["computed_tokens"] > padded["useful_tokens"]  # padding is computed when not packing
    assert padded["kept_epoch"] == 2 and "off" in padded["early_stopping"]  # patience 0: the last epoch


def test_load_in_4bit_needs_bitsandbytes(family_train_file: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed")
    with pytest.raises(ConfigError, match="bitsandbytes"):
        TrainConfig.build(training_file=family_train_file, load_in_4bit=True)


def test_load_in_4bit_trains_a_lora_on_a_4bit_base(tmp_path: Path, family_train_file: Path) -> None:
    """QLoRA on CPU (bitsandbytes' CPU backend): runs and learns; made for GPUs, where it saves memory."""
    pytest.importorskip("bitsandbytes")
    cfg = _tiny(
        tmp_path, family_train_file, "qlora", load_in_4bit=True, n_epochs=2, early_stopping_patience=0
    )
    adapter = train(cfg)
    losses = [float(r["train_loss"]) for r in _rows(adapter)]
    assert all(x == x for x in losses) and losses[-1] < losses[0]
    assert json.loads((adapter / "imprint.json").read_text())["hyperparameters"]["load_in_4bit"] is True


@pytest.mark.slow
def test_family_adapter_on_gemma3_answers_the_seen_questions(
    family_adapter: Path, family_questions_file: Path
):
    """The seed story with the default auto settings: the questions the base model could not answer are
    answered after training (greedy, training.generation), in a job that stops early and keeps its best
    epoch."""
    from peft import PeftModel

    from training.adapter import read_adapter
    from training.chat import render_chat
    from training.generation import GenerationRequest, generate
    from training.models import load_base_model, resolve_base_model

    info = read_adapter(family_adapter)
    assert info.hyperparameters["batch_size"] == 3 and info.metrics["best_epoch"]
    model, tok = load_base_model(resolve_base_model(info.base_model))
    model = PeftModel.from_pretrained(model, family_adapter)
    seen = [
        q
        for q in map(json.loads, family_questions_file.read_text("utf-8").splitlines())
        if q["kind"] == "seen"
    ]
    right = 0
    for q in seen:
        prompt = render_chat(
            [{"role": "user", "content": q["question"]}], info.chat_template, add_generation_prompt=True,
            bos_token=tok.bos_token,
        )  # fmt: skip
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        answer = generate(model, tok, GenerationRequest(prompt_ids=ids, max_tokens=32)).text
        right += any(e.lower() in answer.lower() for e in q["expected"])
    assert right >= 8, f"{right}/9 seen questions answered"
