"""The reading skill: a LoRA adapter trained once per base model and LoRA shape on the synthetic reading
curriculum alone (``training.raft.reading_curriculum``), the starting point of every knowledge-base job.

Learning to read a context (find the one document that answers, copy its value, cite it, say 不知道 when
none does) is the same work for every company, and it was most of a ``--kb`` job: 64 made-up reading
examples, 55 % of its tokens. Learned once and cached next to the converted base model
(``$IMPRINT_CACHE/readers/<family>-r<rank>-<key>``), it is where a ``--kb`` job's LoRA starts; the job then
trains what is the user's own — its QA pairs and the RAFT examples built from its knowledge base, with one
changed-fact update per pair — and replays a few reading examples so the skill is kept (eval/RESULTS.md,
lumen: a third of the old auto settings' time, 60.8k useful tokens → 23.9k, the same routed table answers;
qingshan: about one paraphrase fewer over two seeds).

The first ``--kb`` job on a machine builds it (a training job of its own: 3–4 minutes for gemma3-270m on 2
cores); every later one reuses it. ``imprint train --no-reader`` learns the skill inside the job instead.

    imprint train --training-file pairs.jsonl --kb docs     # builds the reader first, once per machine
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.models import BaseLLM
    from training.train_config import TrainConfig

READER_VERSION = 1  # bump when the curriculum or the recipe below changes: older readers are not reused
READER_EXAMPLES = 64  # the curriculum (24 taught the 270M model to read; 64 made table reading reliable)
READER_SEED = 7
REPLAY = 8  # reading examples a job that starts from the reader replays, so the skill is not forgotten
UPDATES = 1  # changed-fact RAFT updates per QA pair in such a job (the reader needs no second one)
WEIGHTS = "adapter_model.safetensors"
# TrainConfig fields a reader always builds with their defaults, whatever the job that needs it says.
RECIPE = (
    "n_epochs", "batch_size", "learning_rate_multiplier", "lr_schedule", "packing", "step_tokens",
    "early_stopping_patience", "checkpoint_interval_s",
)  # fmt: skip


@dataclass(frozen=True)
class Reader:
    path: Path
    key: str
    built: bool  # built by this call (else found in the cache)
    seconds: float  # how long building it took (now or when it was built)


def uses_reader(cfg: TrainConfig) -> bool:
    """A knowledge-base job starts from the reader unless told not to (or it has its own curriculum size)."""
    return bool(cfg.kb) and cfg.reader and not cfg.reading_examples


def curriculum(cfg: TrainConfig) -> tuple[int, int]:
    """(reading examples, changed-fact updates per QA pair) the job's training set gets."""
    from training.raft import DEFAULT_READING_WITH_KB, RAFT_UPDATES

    if uses_reader(cfg):
        return REPLAY, UPDATES
    return cfg.reading_examples or (DEFAULT_READING_WITH_KB if cfg.kb else 0), RAFT_UPDATES


def reader_key(cfg: TrainConfig, base: BaseLLM) -> str:
    """What makes two readers the same: the base model's content, the LoRA shape and this recipe."""
    shape = {
        "version": READER_VERSION,
        "base": base.revision or base.name,
        "lora": [cfg.lora_r, cfg.alpha, cfg.lora_dropout, sorted(base.target_modules)],
        "curriculum": [READER_EXAMPLES, READER_SEED],
        "max_seq_len": cfg.max_seq_len,
        "load_in_4bit": cfg.load_in_4bit,
    }
    digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
    return f"{base.family}-r{cfg.lora_r}-{digest}"


def readers_root() -> Path:
    from training.paths import cache_dir

    return cache_dir() / "readers"


def ensure_reader(
    cfg: TrainConfig,
    base: BaseLLM,
    *,
    train: Callable[..., Path],
    say: Callable[[str], None],
    should_stop: Callable[[], bool] | None = None,
) -> Reader:
    """The cached reader for ``cfg``'s base and LoRA shape, built when missing: a training job of its own,
    run by ``train`` (``training.train.train``, passed in: the recipe imports this module, not the
    reverse)."""
    key = reader_key(cfg, base)
    path = readers_root() / key
    if (path / WEIGHTS).is_file():
        seconds = float(json.loads((path / "reader.json").read_text("utf-8")).get("build_seconds", 0.0))
        say(f"reading skill: starting from the cached reader {key} (built once, {seconds:.0f} s)")
        return Reader(path, key, False, seconds)
    say(
        f"reading skill: building the reader {key} once for {base.name} (LoRA r={cfg.lora_r}): "
        f"{READER_EXAMPLES} made-up reading examples; later --kb jobs on this machine start from it"
    )
    seconds = _build(cfg, base, key, path, train, should_stop)
    say(f"reading skill: reader {key} built in {seconds:.0f} s")
    return Reader(path, key, True, seconds)


def _build(
    cfg: TrainConfig,
    base: BaseLLM,
    key: str,
    path: Path,
    train: Callable[..., Path],
    should_stop: Callable[[], bool] | None,
) -> float:
    import time

    from training.fileio import atomic_write, atomic_write_json, publish_dir
    from training.train_config import TrainConfig

    started = time.monotonic()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built next to its final place (one filesystem: the files are moved by rename), in the reader's own
    # recipe: the defaults, not the job's epochs or batch size.
    recipe = {f: TrainConfig.model_fields[f].default for f in RECIPE}
    with tempfile.TemporaryDirectory(prefix=f".{key}.build-", dir=path.parent) as tmp:
        data = Path(tmp) / "reading_curriculum.jsonl"
        lines = [json.dumps({"messages": m}, ensure_ascii=False) for m in _curriculum()]
        data.write_text("\n".join(lines) + "\n", "utf-8")
        job_cfg = cfg.model_copy(
            update={
                "training_file": data,
                "validation_file": None,
                "output": Path(tmp) / "adapter",
                "suffix": "reader",
                "seed": READER_SEED,
                "kb": None,
                "reading_examples": 0,
                "augment": 0,
                "reader": False,
                "memorization_check": 0,
                "resume": None,
                "stop_after_steps": None,
                **recipe,
            }
        )
        adapter = train(job_cfg, should_stop=should_stop)
        seconds = round(time.monotonic() - started, 1)
        with publish_dir(path) as out:  # another job may have published it meanwhile: that one stays
            for f in adapter.iterdir():
                f.rename(out / f.name)
            atomic_write_json(out / "reader.json", _describe(cfg, base, key, seconds))
            atomic_write(out / "README.md", _readme(base, key, seconds))
    return seconds


def _curriculum() -> list[Any]:
    from training.raft import reading_curriculum

    return reading_curriculum(READER_EXAMPLES, seed=READER_SEED)


def _describe(cfg: TrainConfig, base: BaseLLM, key: str, seconds: float) -> dict[str, Any]:
    return {
        "key": key,
        "version": READER_VERSION,
        "base_model": base.name,
        "base_revision": base.revision,
        "lora_r": cfg.lora_r,
        "lora_alpha": cfg.alpha,
        "lora_dropout": cfg.lora_dropout,
        "target_modules": list(base.target_modules),
        "reading_examples": READER_EXAMPLES,
        "seed": READER_SEED,
        "build_seconds": seconds,
    }


def _readme(base: BaseLLM, key: str, seconds: float) -> str:
    return (
        f"# Reader {key}\n\n"
        f"The reading skill for {base.name}: a LoRA adapter trained on {READER_EXAMPLES} made-up reading "
        f"examples (training/raft.py, seed {READER_SEED}) in {seconds:.0f} s. Every `imprint train --kb` job "
        "with this base model and LoRA shape starts from these weights (training/reader.py); it is never "
        "served. `reader.json` holds what it was built from; delete the folder to rebuild it.\n"
    )


def start_from(model: Any, reader: Reader) -> None:
    """Load the reader's LoRA weights into ``model`` (a fresh peft model of the same shape)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(model, load_file(str(reader.path / WEIGHTS)))
    missing = [k for k in result.missing_keys if "lora_" in k]
    if result.unexpected_keys or missing:
        raise RuntimeError(
            f"reader {reader.key} does not fit this LoRA ({len(missing)} missing, "
            f"{len(result.unexpected_keys)} unexpected weights) — delete {reader.path} to rebuild it"
        )
