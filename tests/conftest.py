"""Session fixtures shared by every test package.

- ``IMPRINT_HOME`` points at a per-session temp folder (tests never write into ./.imprint); the model cache
  (``IMPRINT_CACHE``) is left alone so the GGUF is converted once per machine, not once per run.
- ``tiny_phi3_base`` / ``tiny_phi3_adapter``: a random tiny Phi-3 and a real ``train()`` on it (seconds);
  ``structured_adapter``: the same, trained to answer in JSON (eval/examples/structured).
- ``family_adapter``: gemma3-270m fine-tuned on the family data, trained ONCE per session and shared;
  ``family_reading_adapter``: the same plus the synthetic reading curriculum (it answers from a context).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parent.parent
FAMILY_TRAIN = REPO / "eval" / "examples" / "family" / "train.jsonl"
FAMILY_QUESTIONS = REPO / "eval" / "examples" / "family" / "questions.jsonl"


@pytest.fixture(scope="session", autouse=True)
def imprint_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("imprint-home")
    old = os.environ.get("IMPRINT_HOME")
    os.environ["IMPRINT_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("IMPRINT_HOME", None)
    else:
        os.environ["IMPRINT_HOME"] = old


@pytest.fixture(scope="session")
def family_train_file() -> Path:
    return FAMILY_TRAIN


@pytest.fixture(scope="session")
def family_questions_file() -> Path:
    return FAMILY_QUESTIONS


@pytest.fixture(scope="session")
def tiny_phi3_base():
    from training.models import resolve_base_model

    return resolve_base_model("tiny-phi3")


@pytest.fixture(scope="session")
def tiny_phi3_adapter(tiny_phi3_base, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny-adapter") / "tiny-family"
    cfg = TrainConfig.build(
        training_file=FAMILY_TRAIN,
        base_model="tiny-phi3",
        output=out,
        n_epochs=3,
        suffix="tiny-family",
        progress=False,
    )
    return train(cfg)


@pytest.fixture(scope="session")
def structured_adapter(tiny_phi3_base, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny-phi3 really fine-tuned (``imprint train``, ~10 s) on eval/examples/structured: it answers in JSON
    objects, so JSON mode (``json_object``) has a model that closes its object; a random one never would."""
    from training.train import TrainConfig, train

    cfg = TrainConfig.build(
        training_file=REPO / "eval" / "examples" / "structured" / "train.jsonl",
        base_model="tiny-phi3",
        output=tmp_path_factory.mktemp("structured-adapter") / "structured",
        n_epochs=40,
        batch_size=1,
        learning_rate_multiplier=25,
        early_stopping_patience=0,  # the validation split is too small to judge a format; train it all
        lr_schedule="constant",
        packing=False,
        suffix="structured",
        progress=False,
    )
    return train(cfg)


@pytest.fixture(scope="session")
def family_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gemma3-270m on the family data with the auto hyperparameters (about 2–3 min on 2 cores)."""
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("family-adapter") / "family"
    return train(TrainConfig.build(training_file=FAMILY_TRAIN, output=out, suffix="family", progress=False))


# Enough reading examples that the 270M model learns to copy a value from a context
# (training/calibration-notes.md: 19 made-up examples moved fresh facts from 0/5 to 3–4/5), few enough to
# train in minutes on 2 cores.
READING_EXAMPLES = 24


@pytest.fixture(scope="session")
def family_reading_adapter(family_train_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gemma3-270m on the family data + the reading curriculum: it reads a context (minutes on 2 cores)."""
    from eval.demo import READING_RECIPE
    from training.train import TrainConfig, train

    out = tmp_path_factory.mktemp("family-reading") / "family"
    return train(
        TrainConfig.build(
            training_file=family_train_file,
            output=out,
            suffix="family",
            reading_examples=READING_EXAMPLES,
            **READING_RECIPE,
            progress=False,
        )
    )
