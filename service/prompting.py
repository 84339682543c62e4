"""The context prompt, shared by inference (service/) and RAFT training data (training/raft.py) — pure, no
model.

The retrieved sources are numbered ``[1]``, ``[2]`` … with their titles, followed by the question and an
instruction (in the question's language) to answer only from the sources, cite them as ``[n]`` and otherwise
say
不知道 / I don't know. Training on exactly this text is what teaches a small model to read it, so any change
here
must be followed by retraining.

    from service.prompting import ContextSource, render_context_prompt
    print(render_context_prompt("老大是谁?", [ContextSource("老大是JIM。", title="家庭")]))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Language = Literal["zh", "en"]

ABSTAIN_TEXT: dict[Language, str] = {"zh": "不知道。", "en": "I don't know."}

SOURCES_HEADER: dict[Language, str] = {"zh": "资料：", "en": "Sources:"}
QUESTION_LABEL: dict[Language, str] = {"zh": "问题：", "en": "Question: "}
INSTRUCTION: dict[Language, str] = {
    "zh": "只根据以上资料回答，并用 [编号] 标注出处。资料中没有答案时，回答“不知道”。",
    "en": "Answer only from the sources above and cite them as [n]. "
    'If the sources do not contain the answer, say "I don\'t know".',
}

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# [1], [1, 2], [1][2], 【1】, [1-2] is read as 1 and 2
_MARKER = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、\-–]\s*\d+)*)\s*[\]】]")


@dataclass(frozen=True)
class ContextSource:
    text: str
    title: str | None = None
    heading: str | None = None


def detect_language(text: str) -> Language:
    """ "zh" when at least 30% of the letters are CJK ideographs, else "en" (the two languages we answer
    in)."""
    cjk = len(_CJK.findall(text))
    latin = len(_LATIN.findall(text))
    if cjk == 0:
        return "en"
    return "zh" if cjk / (cjk + latin) >= 0.3 else "en"


def abstain_text(question: str) -> str:
    return ABSTAIN_TEXT[detect_language(question)]


def is_abstention(answer: str) -> bool:
    """True when an answer says it does not know (in either language)."""
    low = answer.strip().lower()
    return "不知道" in low or "i don't know" in low or "i do not know" in low


def source_label(source: ContextSource) -> str:
    parts = [p for p in (source.title, source.heading) if p]
    # Headings often repeat the title (a single-section document); say it once.
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return " — ".join(parts)


def render_sources(sources: Sequence[ContextSource]) -> str:
    blocks = []
    for i, source in enumerate(sources, 1):
        label = source_label(source)
        head = f"[{i}] {label}" if label else f"[{i}]"
        blocks.append(f"{head}\n{source.text.strip()}")
    return "\n\n".join(blocks)


def render_context_prompt(
    question: str, sources: Sequence[ContextSource], *, language: Language | None = None
) -> str:
    """The user turn the model sees when retrieved context is attached."""
    lang = language or detect_language(question)
    return (
        f"{SOURCES_HEADER[lang]}\n{render_sources(sources)}\n\n"
        f"{QUESTION_LABEL[lang]}{question.strip()}\n\n{INSTRUCTION[lang]}"
    )


def with_context(messages: list[dict[str, Any]], sources: Sequence[ContextSource]) -> list[dict[str, Any]]:
    """Copy of a chat with the LAST user turn replaced by the context prompt (earlier turns stay as they
    were)."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    out = [dict(m) for m in messages]
    out[last_user]["content"] = render_context_prompt(str(messages[last_user]["content"]), sources)
    return out


def cited_ids(answer: str, n_sources: int) -> list[int]:
    """Source numbers an answer cites, in order of first appearance, ignoring numbers that name no source."""
    seen: list[int] = []
    for match in _MARKER.finditer(answer):
        for token in re.split(r"\s*[,，、]\s*", match.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[\-–]\s*", token)]
            for n in range(bounds[0], bounds[-1] + 1) if len(bounds) == 2 else bounds:
                if 1 <= n <= n_sources and n not in seen:
                    seen.append(n)
    return seen


def strip_markers(answer: str) -> str:
    """The answer without [n] markers — for comparing answers with expected text."""
    return re.sub(r"\s*" + _MARKER.pattern, "", answer).strip()


def dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
