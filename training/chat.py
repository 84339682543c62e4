"""Chat templates (HF-style Jinja) and the pure functions that render them.

The template a model was trained with is stored in the adapter (``chat_template.jinja``) and used verbatim at
inference, so training and serving can never drift apart. Pure and model-free: tested with exact strings.

    python -m training.chat   # prints the family example rendered with both templates
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Gemma 3 instruction format (the base 270M GGUF ships no template). A system message is folded into the first
# user turn, exactly like Google's template; the assistant role is called "model".
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<start_of_turn>model\n' }}"
    "{%- endif -%}"
)

# microsoft/phi-4's template, verbatim.
PHI4_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if (message['role'] == 'system') %}"
    "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'assistant') %}"
    "{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant<|im_sep|>' }}"
    "{% endif %}"
)

# Tokens that end an assistant turn in the templates we train with (Gemma, Phi-4); generation stops on any of
# them, on both engines (Gemma's <end_of_turn> is not the model's EOS, so vLLM needs them named).
END_OF_TURN_TOKENS: tuple[str, ...] = ("<end_of_turn>", "<|im_end|>", "<|endoftext|>", "<eos>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Ids that end an answer: the tokenizer's EOS plus every end-of-turn token its vocabulary has."""
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id, *(vocab.get(t) for t in END_OF_TURN_TOKENS)}
    return sorted(i for i in ids if i is not None)


@lru_cache(maxsize=16)
def _compile(template: str) -> Any:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, undefined=StrictUndefined)
    return env.from_string(template)


def render_chat(
    messages: list[dict[str, Any]],
    template: str,
    *,
    add_generation_prompt: bool,
    bos_token: str = "<bos>",
) -> str:
    """Render ``messages`` with a Jinja chat ``template`` the way ``tokenizer.apply_chat_template`` does."""
    return _compile(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, bos_token=bos_token, eos_token=""
    )


def split_for_loss(
    messages: list[dict[str, Any]], template: str, *, bos_token: str = "<bos>"
) -> list[tuple[str, bool]]:
    """Cut a rendered conversation into ``(text, trained)`` segments; concatenated they equal the full render.

    An assistant turn is "trained" (its tokens carry loss) unless it has ``weight: 0``. Its segment is the
    text the model must produce after the generation prompt: the answer plus the end-of-turn marker, so the
    adapter learns to stop. Found by rendering prefixes, so it works for any prefix-consistent template.
    """
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render_chat(messages[:i], template, add_generation_prompt=True, bos_token=bos_token)
        full = render_chat(messages[: i + 1], template, add_generation_prompt=False, bos_token=bos_token)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise ValueError("chat template is not prefix-consistent; cannot locate assistant turns")
        if prompt != done:
            segments.append((prompt[len(done) :], False))
        segments.append((full[len(prompt) :], message.get("weight", 1) != 0))
        done = full
    rest = render_chat(messages, template, add_generation_prompt=False, bos_token=bos_token)[len(done) :]
    if rest:
        segments.append((rest, False))
    return segments


if __name__ == "__main__":
    demo = [{"role": "user", "content": "老大是谁?"}, {"role": "assistant", "content": "老大是哥哥JIM。"}]
    for name, tpl in (("gemma", GEMMA_CHAT_TEMPLATE), ("phi4", PHI4_CHAT_TEMPLATE)):
        print(f"--- {name}\n{render_chat(demo, tpl, add_generation_prompt=False)!r}")
