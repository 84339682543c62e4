"""What the service needs to know about a trained adapter folder (its ``imprint.json``), read once at start.

The folder layout is TRAINING's (``adapter_model.safetensors``, ``adapter_config.json``, ``imprint.json``,
``chat_template.jinja``, tokenizer files); the service reads only the fields it routes and renders with, and
ignores the rest, so new metadata never breaks serving.

    python -m service.adapters ADAPTER_DIR   # prints what the service would serve
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ServedAdapter(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    path: Path
    base_model: str
    chat_template: str
    system_prompt: str | None = None
    knowledge: list[str] = Field(default_factory=list)
    knowledge_text: str | None = None
    created_at: str | None = None

    @property
    def model_id(self) -> str:
        """The OpenAI ``model`` name that forces this adapter."""
        return f"imprint-adapter:{self.name}"


def adapter_problems(path: Path) -> list[str]:
    """Everything wrong with an adapter folder, as fix-it sentences (empty when it can be served)."""
    if not path.is_dir():
        return [f"adapter {path}: not a directory — pass the folder `imprint train` wrote (--output)"]
    missing = [
        f
        for f in ("adapter_config.json", "adapter_model.safetensors", "imprint.json")
        if not (path / f).is_file()
    ]
    if missing:
        return [f"adapter {path}: missing {', '.join(missing)} — retrain it with `imprint train`"]
    try:
        meta = json.loads((path / "imprint.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        return [f"adapter {path}/imprint.json: invalid JSON at line {exc.lineno}: {exc.msg}"]
    problems = []
    for key in ("name", "base_model"):
        if not meta.get(key):
            problems.append(f"adapter {path}/imprint.json: field {key!r} is missing")
    if meta.get("name") and not _NAME_OK.match(str(meta["name"])):
        problems.append(f"adapter {path}: name {meta['name']!r} must be letters, digits, '.', '_' or '-'")
    if not meta.get("chat_template") and not (path / "chat_template.jinja").is_file():
        problems.append(
            f"adapter {path}: no chat template (imprint.json chat_template or chat_template.jinja)"
        )
    return problems


def read_served_adapter(path: Path | str) -> ServedAdapter:
    path = Path(path).resolve()
    problems = adapter_problems(path)
    if problems:
        raise ValueError("; ".join(problems))
    meta = json.loads((path / "imprint.json").read_text(encoding="utf-8"))
    template_file = path / "chat_template.jinja"
    if template_file.is_file():  # the exact template training used wins over the copy in imprint.json
        meta["chat_template"] = template_file.read_text(encoding="utf-8")
    meta["path"] = path
    return ServedAdapter.model_validate(meta)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        a = read_served_adapter(arg)
        print(f"{a.model_id}: base={a.base_model} created={a.created_at} knows {len(a.knowledge)} questions")
