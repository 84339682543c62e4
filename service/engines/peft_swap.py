"""Load-then-switch for LoRA adapters on one in-process peft model (the embedded engine's hot-swap).

A served name (``family``) maps to an internal peft adapter name (``imprint_3``). ``AdapterSlots.swap``
checks the folder against the base model (target modules exist, weight shapes fit), loads it under a NEW
internal name beside the serving version, probes it (one forward pass must give finite logits), and only
then points the served name at it and deletes the old version. Any failure deletes what was half-loaded
and raises a 4xx domain error (``param: "path"``); the serving version is never touched. Call it on the
thread that generates (the embedded engine's one worker), so no request runs while the mapping changes
and every request uses one version from start to end.

    slots = AdapterSlots(model, tokenizer)
    slots.swap("family", Path("adapters/family-v2"))    # AdapterLoadFailed / AdapterMismatch → 400
    with adapter_context(slots.model, slots.internal("family")): ...
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from service.engines.base import AdapterLoadFailed, AdapterMismatch
from training.errors import InvalidInput
from training.generation import adapter_context

log = logging.getLogger("imprint.engine.embedded")
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
PEFT_PREFIX = "base_model.model."
UNCHANGED = "the serving version is unchanged"


class AdapterSlots:
    """Served adapter names → internal peft adapter names on one model (see the module doc)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model = model  # becomes a PeftModel with the first adapter
        self.tokenizer = tokenizer
        self._slots: dict[str, str] = {n: n for n in getattr(model, "peft_config", {})}
        self._count = 0

    def names(self) -> list[str]:
        return list(self._slots)

    def internal(self, name: str | None) -> str | None:
        return None if name is None else self._slots[name]

    def __contains__(self, name: object) -> bool:
        return name in self._slots

    # ── the swap ──
    def swap(self, name: str, path: Path) -> None:
        """Serve ``path`` under ``name``: load beside, probe, switch, drop the old version."""
        path = Path(path)
        try:
            check_fits(self.base_model, path, name)
        except InvalidInput as exc:
            raise type(exc)(f"{exc.message}; {UNCHANGED}", param="path") from exc
        self._count += 1
        new, before = f"imprint_{self._count}", self.model
        try:
            self._load(new, path)
            self._probe(new)
        except Exception as exc:
            self._discard(new)
            if self.model is not before or not self._slots:  # a failed first adapter: the plain model again
                self.model = before
                before.__dict__.pop("peft_config", None)  # peft's tuner set it on the base model
            if isinstance(exc, InvalidInput):
                raise
            raise AdapterLoadFailed(
                f"adapter {name!r} from {path} cannot be loaded: {type(exc).__name__}: {str(exc)[:300]} — "
                f"retrain or re-export it; {UNCHANGED}",
                param="path",
            ) from exc
        old = self._slots.get(name)
        self._slots[name] = new  # the switch: later requests resolve the name to the new version
        if old is not None:
            self._discard(old)
        log.info("adapter %s now served from %s (peft %s, replaced %s)", name, path, new, old)

    @property
    def base_model(self) -> Any:
        return self.model.get_base_model() if hasattr(self.model, "peft_config") else self.model

    def _load(self, internal: str, path: Path) -> None:
        from peft import PeftModel

        if hasattr(self.model, "peft_config"):
            self.model.load_adapter(str(path), adapter_name=internal)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=internal)
        self.model.eval()

    def _probe(self, internal: str) -> None:
        """One forward pass through the new version must give finite logits (catches NaN/inf weights)."""
        import torch

        ids = self.tokenizer("Hello", add_special_tokens=False)["input_ids"][:8] or [0]
        with torch.inference_mode(), adapter_context(self.model, internal):
            logits = self.model(input_ids=torch.tensor([ids], device=self.model.device)).logits
        if not bool(torch.isfinite(logits).all()):
            raise AdapterLoadFailed(
                f"the adapter's probe answer is not finite (NaN/inf weights?) — retrain it; {UNCHANGED}",
                param="path",
            )

    def _discard(self, internal: str) -> None:
        """Remove one internal version, including what a failed load left half-injected."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        config = getattr(self.model, "peft_config", None)
        if config is not None and internal in config and len(config) > 1:
            self.model.delete_adapter(internal)
            return
        if config is not None and internal in config:  # never leave a PeftModel without adapters' config
            del config[internal]
        for module in self.model.modules():
            if isinstance(module, BaseTunerLayer):
                module.delete_adapter(internal)


def skeleton(model_dir: str) -> Any:
    """The base model's modules with shapes but no weights (meta device: no memory, ~1 s) — what
    ``check_fits`` needs when the weights live in another process (vLLM)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir))


def check_fits(base: Any, path: Path, name: str) -> None:
    """Raise AdapterMismatch unless every target module exists in ``base`` and every LoRA weight's shape
    fits the layer it adapts (an adapter trained on another base model fails here, before loading)."""
    try:
        config = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterLoadFailed(f"adapter {name!r}: {CONFIG} unreadable ({exc})", param="path") from exc
    if not isinstance(config, dict):
        raise AdapterLoadFailed(f"adapter {name!r}: {CONFIG} must be a JSON object", param="path")
    modules = dict(base.named_modules())
    missing = _missing_targets(config.get("target_modules"), list(modules))
    if missing:
        raise AdapterMismatch(
            f"adapter {name!r} targets modules {missing} that the served base model does not have — it was "
            "trained on another base model; serve it from a matching instance",
            param="path",
        )
    for key, shape in weight_shapes(path / WEIGHTS, name).items():
        problem = _shape_problem(key, shape, modules)
        if problem:
            raise AdapterMismatch(
                f"adapter {name!r}: {problem} — it was trained on another base model; serve it from a "
                "matching instance",
                param="path",
            )


def _missing_targets(targets: Any, names: list[str]) -> list[str]:
    import re

    if isinstance(targets, str):  # peft: a regex over full module names
        try:
            return [] if any(re.fullmatch(targets, n) for n in names) else [targets]
        except re.error:
            return [targets]
    if not isinstance(targets, list):
        return []
    return [t for t in targets if not any(n == t or n.endswith("." + str(t)) for n in names)]


def weight_shapes(path: Path, name: str) -> dict[str, list[int]]:
    """Each tensor's shape from the safetensors header (cheap); AdapterLoadFailed if it is unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: list(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 — not a dict
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise AdapterLoadFailed(
            f"adapter {name!r}: {WEIGHTS} is not readable safetensors ({str(exc)[:200]}) — re-export it",
            param="path",
        ) from exc


def _shape_problem(key: str, shape: list[int], modules: dict[str, Any]) -> str | None:
    # lora_A is [r, in_features], lora_B is [out_features, r]; a Linear weight is [out, in].
    part, dim = (".lora_A.", 1) if ".lora_A." in key else (".lora_B.", 0)
    if part not in key:
        return None
    module_name = key.split(part)[0].removeprefix(PEFT_PREFIX)
    module = modules.get(module_name)
    if module is None:
        return f"weights for module {module_name!r}, which the served base model does not have"
    module = getattr(module, "base_layer", module)  # already wrapped by peft: the original layer
    weight = getattr(module, "weight", None)
    if weight is None or weight.dim() != 2 or len(shape) != 2:
        return None
    want = weight.shape[1] if dim == 1 else weight.shape[0]
    if shape[dim] != want:
        return f"{key} has shape {shape}, but the base layer {module_name!r} needs {want} there"
    return None
