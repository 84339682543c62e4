"""Chat templates as exact strings, loss segments and label masks (pure, no model weights)."""

from __future__ import annotations

from training.chat import GEMMA_CHAT_TEMPLATE, PHI4_CHAT_TEMPLATE, render_chat, split_for_loss

QA = [{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "老大是哥哥JIM。"}]
SYS_QA = [{"role": "system", "content": "S"}, *QA]


def test_gemma_template_exact() -> None:
    assert render_chat(QA, GEMMA_CHAT_TEMPLATE, add_generation_prompt=False) == (
        "<bos><start_of_turn>user\n老大是谁?<end_of_turn>\n<start_of_turn>model\n老大是哥哥JIM。<end_of_turn>\n"
    )
    assert render_chat(QA[:1], GEMMA_CHAT_TEMPLATE, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\n老大是谁?<end_of_turn>\n<start_of_turn>model\n"
    )
    # Gemma has no system role: the system text is folded into the first user turn.
    assert render_chat(SYS_QA[:2], GEMMA_CHAT_TEMPLATE, add_generation_prompt=True) == (
        "<bos><start_of_turn>user\nS\n\n老大是谁?<end_of_turn>\n<start_of_turn>model\n"
    )


def test_phi4_template_exact() -> None:
    assert render_chat(SYS_QA, PHI4_CHAT_TEMPLATE, add_generation_prompt=False) == (
        "<|im_start|>system<|im_sep|>S<|im_end|><|im_start|>user<|im_sep|>老大是谁?<|im_end|>"
        "<|im_start|>assistant<|im_sep|>老大是哥哥JIM。<|im_end|>"
    )
    assert render_chat(QA[:1], PHI4_CHAT_TEMPLATE, add_generation_prompt=True) == (
        "<|im_start|>user<|im_sep|>老大是谁?<|im_end|><|im_start|>assistant<|im_sep|>"
    )


def test_templates_match_transformers_apply_chat_template(tiny_phi3_base) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_phi3_base.path)
    assert tok.apply_chat_template(SYS_QA, tokenize=False) == render_chat(
        SYS_QA, PHI4_CHAT_TEMPLATE, add_generation_prompt=False, bos_token=tok.bos_token
    )


def test_split_for_loss_marks_only_assistant_turns_and_honours_weight() -> None:
    convo = [
        *QA,
        {"role": "user", "content": "Q2"},
        {"role": "assistant", "content": "A2", "weight": 0},
        {"role": "user", "content": "Q3"},
        {"role": "assistant", "content": "A3", "weight": 1},
    ]
    segments = split_for_loss(convo, PHI4_CHAT_TEMPLATE, bos_token="")
    assert "".join(t for t, _ in segments) == render_chat(
        convo, PHI4_CHAT_TEMPLATE, add_generation_prompt=False
    )
    assert [t for t, trained in segments if trained] == ["老大是哥哥JIM。<|im_end|>", "A3<|im_end|>"]
    gemma = split_for_loss(QA, GEMMA_CHAT_TEMPLATE)
    assert gemma == [
        ("<bos><start_of_turn>user\n老大是谁?<end_of_turn>\n<start_of_turn>model\n", False),
        ("老大是哥哥JIM。<end_of_turn>\n", True),
    ]
