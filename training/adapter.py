"""The self-describing adapter folder — the ONE module that writes, reads and validates it.

    imprint adapters list            # every adapter under $IMPRINT_HOME/adapters
    python -m training.adapter DIR   # prints one adapter's metadata, or every problem with the folder

Folder layout (vLLM / peft load it unchanged): ``adapter_model.safetensors``, ``adapter_config.json`` (peft;
no modules_to_save, r ≤ 64), ``imprint.json`` (the metadata below), ``chat_template.jinja`` (used verbatim at
inference; it wins over the copy in ``imprint.json``), ``knowledge.md`` (system-only records' text),
tokenizer files, ``results.csv``, ``metrics.json``, ``loss.png``. Training, serving, eval and the lifecycle
all read it through :func:`read_adapter`, so they cannot disagree about what a valid adapter is.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from training.errors import InvalidInput
from training.fileio import atomic_write

META_FILE = "imprint.json"
TEMPLATE_FILE = "chat_template.jinja"
WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class AdapterError(InvalidInput):
    """An adapter folder that cannot be used; the message lists every problem and the fix."""

    default_code = "invalid_adapter"


class AdapterInfo(BaseModel):
    """``imprint.json``: what the adapter is, what it was trained on and what it knows by heart."""

    model_config = ConfigDict(extra="ignore")  # newer metadata never breaks an older reader

    name: str
    base_model: str
    chat_template: str
    base_revision: str = ""
    system_prompt: str | None = None
    knowledge: list[str] = Field(default_factory=list)  # the user questions it was trained on
    knowledge_text: str = ""  # system-only records (knowledge.md)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    data_sha256: str = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = None  # ISO UTC
    imprint_version: str = ""
    # The memorisation check at the end of training: which training questions the adapter still gets wrong
    # ("missed": the router never trusts it on them) and the calibrated answer-confidence threshold.
    memorization: dict[str, Any] = Field(default_factory=dict)
    path: Path = Field(default=Path(), exclude=True)
    # The engine's name for this folder when it is one version of a registry name ("family.v3" serves
    # "family"): each version loads under its own engine name, so a promotion switches whole versions.
    served_as: str | None = Field(default=None, exclude=True)

    @property
    def model_id(self) -> str:
        """The OpenAI ``model`` name that forces this adapter."""
        return f"imprint-adapter:{self.name}"

    @property
    def missed(self) -> frozenset[str]:
        """The training questions it failed in its memorisation check."""
        return frozenset(self.memorization.get("missed", []))

    def trained_answer(self, question: str) -> str | None:
        """The answer it was trained to give ``question``, as its memorisation check recorded it."""
        for o in self.memorization.get("outcomes", []):
            if o.get("question") == question and o.get("expected"):
                return str(o["expected"])
        return None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def adapter_problems(path: Path) -> list[str]:
    """Everything wrong with an adapter folder, as fix-it sentences (empty when it can be used)."""
    path = Path(path)
    try:
        if not path.is_dir():
            return [f"adapter {path}: not a directory — pass the folder `imprint train` wrote (--output)"]
        missing = [f for f in (*WEIGHT_FILES, META_FILE) if not (path / f).is_file()]
    except OSError as exc:  # a name too long, a permission denied on the way: not a usable folder either
        return [f"adapter {path}: cannot be opened ({exc.strerror or exc})"]
    if missing:
        return [f"adapter {path}: missing {', '.join(missing)} — retrain it with `imprint train`"]
    problems = _peft_config_problems(path)
    meta, meta_problems = _load_meta(path)
    if meta is None:
        return problems + meta_problems
    try:
        info = AdapterInfo.model_validate(meta)
    except ValidationError as exc:
        return problems + [
            f"adapter {path / META_FILE}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors()
        ]
    if not NAME_RE.match(info.name):
        problems.append(f"adapter {path}: name {info.name!r} must be 1–64 letters, digits, '.', '_' or '-'")
    return problems


def _read_json(file: Path) -> tuple[Any, str | None]:
    """(the JSON value, None) or (None, the problem) — never raises for a bad or unreadable file."""
    try:
        return json.loads(file.read_text(encoding="utf-8")), None
    except json.JSONDecodeError as exc:
        return None, f"adapter {file}: invalid JSON at line {exc.lineno}: {exc.msg}"
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        return None, f"adapter {file}: unreadable ({exc})"


def _peft_config_problems(path: Path) -> list[str]:
    """``adapter_config.json`` must be a LoRA config object peft and vLLM can read."""
    file = path / WEIGHT_FILES[0]
    config, problem = _read_json(file)
    if problem:
        return [problem]
    if not isinstance(config, dict):
        return [f"adapter {file}: must be a JSON object, got {type(config).__name__}"]
    problems = []
    targets = config.get("target_modules")
    if not (
        isinstance(targets, str) or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))
    ):
        problems.append(f"adapter {file}: target_modules must be a list of module names, got {targets!r:.80}")
    rank = config.get("r")
    if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= 512:
        problems.append(f"adapter {file}: r must be a LoRA rank 1..512, got {rank!r:.40}")
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"adapter {file}: peft_type {config.get('peft_type')!r:.40} is not LORA")
    return [p + " — retrain it with `imprint train`" for p in problems]


def _load_meta(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    meta, problem = _read_json(path / META_FILE)
    if problem:
        return None, [problem]
    if not isinstance(meta, dict):
        return None, [f"adapter {path / META_FILE}: must be a JSON object, got {type(meta).__name__}"]
    template = path / TEMPLATE_FILE
    if template.is_file():  # the exact template training used wins over the copy in imprint.json
        try:
            meta["chat_template"] = template.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            return None, [f"adapter {template}: unreadable ({exc})"]
    if not meta.get("chat_template"):
        return None, [f"adapter {path}: no chat template ({TEMPLATE_FILE} or chat_template in {META_FILE})"]
    return meta, []


def read_adapter(path: str | Path) -> AdapterInfo:
    """Load and validate an adapter folder; raises AdapterError listing every problem."""
    path = Path(path).resolve()
    problems = adapter_problems(path)
    if problems:
        raise AdapterError("; ".join(problems), param="path")
    meta, _ = _load_meta(path)
    assert meta is not None  # adapter_problems checked it
    return AdapterInfo.model_validate({**meta, "path": path})


def write_metadata(path: Path, info: AdapterInfo) -> None:
    """Write imprint.json + chat_template.jinja + knowledge.md into ``path`` (a not-yet-published folder)."""
    atomic_write(path / TEMPLATE_FILE, info.chat_template)
    atomic_write(path / "knowledge.md", info.knowledge_text)
    atomic_write(path / META_FILE, json.dumps(info.to_json(), ensure_ascii=False, indent=2))


def list_adapters(root: str | Path | None = None) -> list[AdapterInfo]:
    """Every readable adapter directly under ``root`` (default ``$IMPRINT_HOME/adapters``), newest first."""
    from training.paths import imprint_home

    root = Path(root) if root is not None else imprint_home() / "adapters"
    if not root.is_dir():
        return []
    found: list[AdapterInfo] = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / META_FILE).exists():
            try:
                found.append(read_adapter(child))
            except AdapterError:
                continue
    return sorted(found, key=lambda a: a.created_at or "", reverse=True)


if __name__ == "__main__":
    try:
        info = read_adapter(sys.argv[1])
    except AdapterError as e:
        sys.exit(str(e))
    print(json.dumps(info.model_dump(mode="json", exclude={"chat_template"}), ensure_ascii=False, indent=2))
