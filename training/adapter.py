"""The self-describing adapter folder: read it, list them, write its metadata.

    imprint adapters list            # every adapter under $IMPRINT_HOME/adapters
    python -m training.adapter DIR   # prints one adapter's imprint.json summary

Folder layout (vLLM / peft load it unchanged): ``adapter_model.safetensors``, ``adapter_config.json`` (peft;
no modules_to_save, r ≤ 64), ``imprint.json`` (the metadata below), ``chat_template.jinja`` (used verbatim at
inference), ``knowledge.md`` (system-only records' text), tokenizer files, ``results.csv``, ``metrics.json``,
``loss.png``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

META_FILE = "imprint.json"
REQUIRED_FILES = ("adapter_model.safetensors", "adapter_config.json", META_FILE, "chat_template.jinja")


@dataclass
class AdapterInfo:
    name: str
    base_model: str
    base_revision: str
    chat_template: str
    system_prompt: str | None
    knowledge: list[str]
    knowledge_text: str
    hyperparameters: dict[str, Any]
    data_sha256: str
    metrics: dict[str, Any]
    created_at: str
    imprint_version: str
    path: Path = field(default_factory=Path)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("path")
        return out


class AdapterError(ValueError):
    pass


def read_adapter(path: str | Path) -> AdapterInfo:
    """Load an adapter folder's metadata; raises AdapterError naming the missing file or field."""
    path = Path(path)
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise AdapterError(
            f"{path} is not an Imprint adapter: missing {', '.join(missing)} (train one with `imprint train`)"
        )
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    meta["chat_template"] = (path / "chat_template.jinja").read_text(encoding="utf-8")
    names = [f for f in AdapterInfo.__dataclass_fields__ if f != "path"]
    absent = [n for n in names if n not in meta]
    if absent:
        raise AdapterError(f"{path / META_FILE}: missing fields {absent}")
    return AdapterInfo(**{n: meta[n] for n in names}, path=path.resolve())


def write_metadata(path: Path, info: AdapterInfo) -> None:
    """Write imprint.json + chat_template.jinja + knowledge.md into ``path`` (a not-yet-published folder)."""
    meta = info.to_json()
    (path / "chat_template.jinja").write_text(info.chat_template, encoding="utf-8")
    (path / "knowledge.md").write_text(info.knowledge_text, encoding="utf-8")
    (path / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")


def list_adapters(root: str | Path | None = None) -> list[AdapterInfo]:
    """Every readable adapter directly under ``root`` (default ``$IMPRINT_HOME/adapters``), newest first."""
    from training.paths import imprint_home

    root = Path(root) if root is not None else imprint_home() / "adapters"
    if not root.is_dir():
        return []
    found: list[AdapterInfo] = []
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / META_FILE).exists() and not child.name.startswith("."):
            try:
                found.append(read_adapter(child))
            except (AdapterError, json.JSONDecodeError):
                continue
    return sorted(found, key=lambda a: a.created_at, reverse=True)


if __name__ == "__main__":
    info = read_adapter(sys.argv[1])
    print(
        json.dumps(
            {k: v for k, v in info.to_json().items() if k != "chat_template"}, ensure_ascii=False, indent=2
        )
    )
