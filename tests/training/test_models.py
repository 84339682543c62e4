"""Base models: names resolve to a BaseLLM (local folder, family, template, LoRA targets, revision)."""

from __future__ import annotations

from training.chat import PHI4_CHAT_TEMPLATE
from training.models import TARGET_MODULES, BaseLLM, resolve_base_model


def test_tiny_phi3_resolves_to_a_cached_local_base(tiny_phi3_base: BaseLLM) -> None:
    assert isinstance(tiny_phi3_base, BaseLLM)
    assert (tiny_phi3_base.name, tiny_phi3_base.family) == ("tiny-phi3", "phi3")
    assert tiny_phi3_base.chat_template == PHI4_CHAT_TEMPLATE
    assert tiny_phi3_base.target_modules == TARGET_MODULES["phi3"]
    assert tiny_phi3_base.revision.startswith("sha256:")
    # a local folder resolves to the same family, template and revision
    again = resolve_base_model(tiny_phi3_base.path)
    assert (again.family, again.chat_template, again.revision) == (
        "phi3",
        PHI4_CHAT_TEMPLATE,
        tiny_phi3_base.revision,
    )
