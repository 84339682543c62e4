"""The context prompt, shared by RAFT training data (training/raft.py) and inference (service/) — pure, no
model.

The retrieved sources are numbered ``[1]``, ``[2]`` … with their titles, followed by the question and an
instruction (in the question's language) to answer only from the sources, cite them as ``[n]`` and otherwise
say 不知道 / I don't know. Training on exactly this text is what teaches a small model to read it, so any
change here must be followed by retraining.

    python -m training.prompting     # prints a rendered example
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from training.text import Language, detect_language

SOURCES_HEADER: dict[Language, str] = {"zh": "资料：", "en": "Sources:"}
QUESTION_LABEL: dict[Language, str] = {"zh": "问题：", "en": "Question: "}
INSTRUCTION: dict[Language, str] = {
    "zh": "只根据以上资料回答，并用 [编号] 标注出处。资料中没有答案时，回答“不知道”。",
    "en": "Answer only from the sources above and cite them as [n]. "
    'If the sources do not contain the answer, say "I don\'t know".',
}

# [1], [1, 2], [1][2], 【1】, [1-2] is read as 1 and 2
_MARKER = re.compile(r"[\[【]\s*(\d+(?:\s*[,，、\-–]\s*\d+)*)\s*[\]】]")


@dataclass(frozen=True)
class ContextSource:
    text: str
    title: str | None = None
    heading: str | None = None


def split_table_row(line: str) -> list[str]:
    """The cells of one Markdown table row: ``"| 星光台灯 | 199元 |"`` → ``["星光台灯", "199元"]``."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", body)]


def table_row_text(header: Sequence[str], row: Sequence[str]) -> str:
    """One table row as ``column: value`` pairs, so a value never loses its column (or its row):
    ``商品: 星光台灯 | 价格: 199元 | 库存: 12``. Retrieval indexes rows in this form and the context prompt
    shows them so; RAFT's synthetic tables use it too, so training and inference see the same text."""
    pairs = [f"{h}: {v}" if h else v for h, v in zip(header, row, strict=False) if v]
    return " | ".join(pairs)


# A row's key cell with a qualifier in brackets: "折叠车（每天）" is asked about as "折叠车".
_QUALIFIER = re.compile(r"\s*[（(][^（()）]*[)）]\s*")
# The measure word a question counts in: "还有多少辆可以租?" → 辆, "几个" → 个.
_ASKED_UNIT = re.compile(r"(?:多少|几)\s*([^\s\d\W])")
# The unit of a cell value: "240辆" → 辆, "5元" → 元.
_VALUE_UNIT = re.compile(r"\s*[\d.,，]+\s*([^\s\d\W])\w*\s*")


def row_names(key: str) -> list[str]:
    """The names a question may call a table row by: its key cell, and the key without a bracketed
    qualifier ("折叠车（每天）" → ["折叠车（每天）", "折叠车"]); names under two characters name nothing."""
    names = [key.strip(), _QUALIFIER.sub("", key).strip()]
    return [n for i, n in enumerate(names) if len(n) >= 2 and n not in names[:i]]


def names_row(question: str, key: str) -> bool:
    """Whether ``question`` names the table row whose key cell is ``key`` (case-insensitive)."""
    low = question.lower()
    return any(name.lower() in low for name in row_names(key))


def focus_row(row_text: str, question: str) -> str:
    """A ``table_row_text`` row cut to the columns the question names, after the row's key cell:
    "晨露R1净水器的促销价是多少?" + ``产品: 晨露R1净水器 | 标价: 1599元 | 促销价: 1299元`` →
    ``产品: 晨露R1净水器 | 促销价: 1299元`` (a small model copies the first price it sees). A question that
    names no column but counts in the unit of exactly one column's value names that column ("还有多少辆
    可以租?" → ``库存: 240辆``). A question that names no column (or text that is not a row) gets the text
    unchanged."""
    pairs = _pairs(row_text)
    named = named_columns(pairs, question) if len(pairs) >= 3 else []
    if not named:
        return row_text
    return " | ".join(": ".join(pairs[i]) for i in [0, *named])


def _pairs(row_text: str) -> list[list[str]]:
    """A ``table_row_text`` row's ``[header, value]`` pairs; [] for text that is not a row."""
    pairs = [c.split(": ", 1) for c in row_text.split(" | ")]
    if len(pairs) < 2 or "\n" in row_text or any(len(p) != 2 or not p[0] for p in pairs):
        return []
    return pairs


def named_columns(pairs: list[list[str]], question: str) -> list[int]:
    """Indexes of the value columns the question names by header, else the one it counts in the unit of."""
    low = question.lower()
    named = [i for i, (header, _) in enumerate(pairs[1:], 1) if len(header) >= 2 and header.lower() in low]
    return named or _columns_in_unit(pairs, question)


# Questions a cell's value does not answer even when they name its row and column: why, how, when.
_NOT_A_VALUE = re.compile(r"为什么|为何|怎么|如何|什么时候|何时|哪天|\b(?:why|how to|when)\b", re.IGNORECASE)


def cell_of(row_text: str, question: str) -> tuple[str, str, str] | None:
    """``(row key, column, value)`` when the question names exactly one value column of this row and
    asks for a value: "折叠车按天租的会员价是多少?" + ``项目: 折叠车（每天） | … | 会员价: 42元 | …`` →
    ``("折叠车（每天）", "会员价", "42元")``. None for prose, for no column or several, and for questions
    asking why, how or when."""
    pairs = _pairs(row_text)
    named = named_columns(pairs, question) if pairs else []
    if len(named) != 1 or _NOT_A_VALUE.search(question):
        return None
    header, value = pairs[named[0]]
    return pairs[0][1], header, value


def cell_sentence(key: str, column: str, value: str, source: int, language: Language) -> str:
    """The answer a named cell gives, citing its source: ``折叠车（每天）的会员价是42元。[1]``."""
    if language == "zh":
        return f"{key}的{column}是{value}。[{source}]"
    return f"The {column} of {key} is {value} [{source}]."


def quoted_line(line: str, source: int, language: Language) -> str:
    """A source line given as the answer, citing it: ``- 客服热线：400-615-2708`` → ``客服热线：400-615-2708。
    [1]``."""
    text = re.sub(r"^\s*(?:[-*+•]|\d+[.)、])\s*", "", line).strip().rstrip("。.;；,，")
    return f"{text}。[{source}]" if language == "zh" else f"{text} [{source}]."


def _columns_in_unit(pairs: list[list[str]], question: str) -> list[int]:
    """The one value column whose unit the question counts in, or none (two columns in 元 are ambiguous)."""
    asked = {m.group(1) for m in _ASKED_UNIT.finditer(question)}
    units = [_VALUE_UNIT.fullmatch(value) for _, value in pairs[1:]]
    hits = [i for i, u in enumerate(units, 1) if u is not None and u.group(1) in asked]
    return hits if len(hits) == 1 else []


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


if __name__ == "__main__":
    print(render_context_prompt("老大是谁?", [ContextSource("老大是哥哥JIM。", title="家庭")]))
