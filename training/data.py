"""Chat JSONL training data: validation (OpenAI fine-tuning rules), statistics, preview, validation split.

    imprint data check eval/examples/family/train.jsonl            # the CLI front end
    python -m training.data eval/examples/family/train.jsonl        # same check, no model (no token counts)

Every problem names its line, field and the fix, and all are collected in one pass. A record made only of
system messages (the seed's first line) is not a training example: its text is kept as the adapter's knowledge
(``knowledge_text``), never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from training.errors import InvalidInput

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = {"role", "content", "weight", "name"}
MIN_RECOMMENDED_EXAMPLES = 10
# No tokenizer makes fewer tokens than characters / 32, so a line longer than that × the token limit is
# rejected before it is parsed or tokenised.
MAX_CHARS_PER_TOKEN = 32
KNOWLEDGE_NOTE = (
    "system-only record → kept as knowledge, not a training example; "
    "it is saved with the adapter as knowledge.md (make it retrievable with "
    "`imprint index ADAPTER_DIR/knowledge.md --kb NAME`)"
)

Severity = Literal["error", "warning", "info"]
Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class Issue:
    severity: Severity
    line: int | None
    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        fix = f" — fix: {self.fix}" if self.fix else ""
        field = "" if self.field in ("", where) else f"{self.field}: "
        return f"{self.severity}: {where}: {field}{self.message}{fix}"


@dataclass(frozen=True)
class Example:
    line: int
    messages: Messages


@dataclass
class DataReport:
    path: Path
    sha256: str
    examples: list[Example] = field(default_factory=list)
    knowledge: list[tuple[int, str]] = field(default_factory=list)  # (line, system text)
    issues: list[Issue] = field(default_factory=list)
    token_counts: list[int] = field(default_factory=list)  # per example, when a tokenizer was given
    trained_token_counts: list[int] = field(default_factory=list)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.examples)

    @property
    def knowledge_text(self) -> str:
        return "\n\n".join(text for _, text in self.knowledge)

    def stats(self) -> dict[str, Any]:
        roles = {r: sum(1 for e in self.examples for m in e.messages if m["role"] == r) for r in ROLES}
        out: dict[str, Any] = {
            "examples": len(self.examples),
            "knowledge_records": len(self.knowledge),
            "messages": roles,
            "errors": len(self.errors),
            "warnings": sum(1 for i in self.issues if i.severity == "warning"),
        }
        if self.token_counts:
            out["tokens"] = {
                "min": min(self.token_counts),
                "mean": round(statistics.fmean(self.token_counts), 1),
                "max": max(self.token_counts),
                "total": sum(self.token_counts),
                "trained": sum(self.trained_token_counts),
            }
        return out


class DataError(InvalidInput):
    """Raised when a training file is unusable; the message lists every problem (line, field, fix)."""

    default_code = "invalid_training_file"

    def __init__(self, report: DataReport) -> None:
        self.report = report
        lines = "\n".join(f"  {i}" for i in report.errors) or "  no usable training examples"
        super().__init__(f"{report.path} is not usable for training:\n{lines}", param="training_file")


def _check_message(i: int, lineno: int, msg: Any, issues: list[Issue]) -> bool:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        issues.append(
            Issue("error", lineno, where, "is not an object", 'write {"role": ..., "content": ...}')
        )
        return False
    ok = True
    role = msg.get("role")
    if role not in ROLES:
        issues.append(
            Issue(
                "error",
                lineno,
                f"{where}.role",
                f"{role!r} is not one of {', '.join(ROLES)}",
                "use system, user or assistant",
            )
        )
        ok = False
    content = msg.get("content")
    if not isinstance(content, str):
        issues.append(
            Issue(
                "error",
                lineno,
                f"{where}.content",
                f"must be a string, got {type(content).__name__}",
                "put the message text in a plain string",
            )
        )
        ok = False
    elif not content.strip():
        issues.append(
            Issue("error", lineno, f"{where}.content", "is empty", "write the message text or drop it")
        )
        ok = False
    if "weight" in msg:
        if role != "assistant":
            issues.append(
                Issue(
                    "error",
                    lineno,
                    f"{where}.weight",
                    "only assistant messages may have a weight",
                    "remove weight from this message",
                )
            )
            ok = False
        elif msg["weight"] not in (0, 1) or isinstance(msg["weight"], bool):
            issues.append(
                Issue(
                    "error",
                    lineno,
                    f"{where}.weight",
                    f"must be 0 or 1, got {msg['weight']!r}",
                    "use 1 to train on this answer, 0 to skip it",
                )
            )
            ok = False
    unknown = sorted(set(msg) - MESSAGE_KEYS)
    if unknown:
        issues.append(Issue("warning", lineno, where, f"unknown keys {unknown} are ignored", "remove them"))
    return ok


def validate_file(
    path: str | Path,
    *,
    count_tokens: Callable[[Messages], tuple[int, int]] | None = None,
    max_tokens: int | None = None,
) -> DataReport:
    """Check ``path`` against the OpenAI chat fine-tuning rules; return every problem at once.

    ``count_tokens(messages) -> (total, trained)`` comes from the base model's tokenizer and template;
    without it token lengths are not checked.
    """
    path = Path(path)
    if not path.is_file():
        report = DataReport(path=path, sha256="")
        report.issues.append(Issue("error", None, "file", f"{path} does not exist", "pass a JSONL file path"))
        return report
    raw = path.read_bytes()
    report = DataReport(path=path, sha256=hashlib.sha256(raw).hexdigest())
    issues = report.issues
    seen: dict[str, int] = {}
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(Issue("error", None, "file", f"not UTF-8 ({exc})", "save the file as UTF-8"))
        return report
    # JSON Lines end at "\n" only: str.splitlines would also cut at U+2028/U+2029 inside a JSON string.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            issues.append(Issue("warning", lineno, "line", "blank line is skipped", "delete it"))
            continue
        if max_tokens is not None and len(line) > MAX_CHARS_PER_TOKEN * max_tokens:
            # Decoding and tokenising a 20 MB line to learn it is too long took a minute and gigabytes.
            issues.append(
                Issue(
                    "error",
                    lineno,
                    "messages",
                    f"{len(line):,} characters cannot fit the {max_tokens}-token limit per example",
                    "shorten the conversation or split it into several examples",
                )
            )
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.append(
                Issue(
                    "error",
                    lineno,
                    "json",
                    f"not valid JSON ({exc.msg} at column {exc.colno})",
                    "each line must be exactly one JSON object",
                )
            )
            continue
        if not isinstance(record, dict):
            issues.append(
                Issue(
                    "error",
                    lineno,
                    "json",
                    f"is a {type(record).__name__}, not an object",
                    'write {"messages": [...]} on each line',
                )
            )
            continue
        messages = record.get("messages")
        if not isinstance(messages, list) or not messages:
            issues.append(
                Issue(
                    "error",
                    lineno,
                    "messages",
                    "missing or empty",
                    'add a non-empty "messages" list of {"role", "content"} objects',
                )
            )
            continue
        if not all([_check_message(i, lineno, m, issues) for i, m in enumerate(messages)]):
            continue
        roles = [m["role"] for m in messages]
        if all(r == "system" for r in roles):
            report.knowledge.append((lineno, "\n\n".join(m["content"] for m in messages)))
            issues.append(Issue("info", lineno, "", KNOWLEDGE_NOTE))
            continue
        if "assistant" not in roles:
            issues.append(
                Issue(
                    "error",
                    lineno,
                    "messages",
                    "has no assistant message",
                    "add the answer as an assistant message",
                )
            )
            continue
        if roles[-1] != "assistant":
            issues.append(
                Issue(
                    "warning",
                    lineno,
                    f"messages[{len(roles) - 1}]",
                    "the example ends with a user/system message that nothing answers",
                    "end each example with the assistant's answer",
                )
            )
        if all(m.get("weight", 1) == 0 for m in messages if m["role"] == "assistant"):
            issues.append(
                Issue(
                    "warning",
                    lineno,
                    "weight",
                    "every assistant message has weight 0: nothing is learned from this example",
                    "set weight 1 on at least one answer",
                )
            )
        key = json.dumps(messages, ensure_ascii=False, sort_keys=True)
        if key in seen:
            issues.append(
                Issue(
                    "warning",
                    lineno,
                    "messages",
                    f"exact duplicate of line {seen[key]}",
                    "remove the duplicate (it doubles that example's weight)",
                )
            )
        seen.setdefault(key, lineno)
        if count_tokens is not None:
            total, trained = count_tokens(messages)
            if max_tokens is not None and total > max_tokens:
                issues.append(
                    Issue(
                        "error",
                        lineno,
                        "messages",
                        f"{total} tokens exceed the base model's limit of {max_tokens}",
                        "shorten or split this conversation",
                    )
                )
                continue
            report.token_counts.append(total)
            report.trained_token_counts.append(trained)
        report.examples.append(Example(line=lineno, messages=messages))
    if not report.examples:
        issues.append(
            Issue(
                "error",
                None,
                "file",
                "no usable training examples",
                "add user/assistant examples (10 or more recommended)",
            )
        )
    elif len(report.examples) < MIN_RECOMMENDED_EXAMPLES:
        issues.append(
            Issue(
                "warning",
                None,
                "file",
                f"only {len(report.examples)} usable examples; {MIN_RECOMMENDED_EXAMPLES}+ are recommended",
                "add examples or use --augment",
            )
        )
    return report


def last_user_question(messages: Messages) -> str | None:
    """The last user message before the final assistant answer (the question the example teaches)."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else None


@dataclass(frozen=True)
class Split:
    train: list[Messages]
    valid: list[Messages]
    how: str  # printed and recorded in imprint.json


SMALL_SET = 20


def auto_split(
    examples: list[Messages],
    *,
    seed: int,
    paraphrase: Callable[[str, int], list[str]] | None = None,
) -> Split:
    """Reproducible validation split that never empties training nor removes a fact.

    Tiny sets (< 20 examples) keep every example for training and validate on one deterministic paraphrase of
    each training question (same answer), which measures recall beyond the memorised wording; without a
    paraphraser they validate on a copy of up to 3 training examples (flagged "seen"). Larger sets hold out
    10% (at most 200) chosen by ``seed``.
    """
    n = len(examples)
    if n == 0:
        return Split([], [], "no examples")
    if n < SMALL_SET:
        valid: list[Messages] = []
        if paraphrase is not None:
            for messages in examples:
                question = last_user_question(messages)
                variants = paraphrase(question, 1) if question else []
                if variants:
                    idx = max(i for i, m in enumerate(messages) if m["role"] == "user")
                    copy = [dict(m) for m in messages]
                    copy[idx]["content"] = variants[0]
                    valid.append(copy)
        if valid:
            return Split(
                list(examples),
                valid,
                f"{n} examples < {SMALL_SET}: all kept for training; validating on {len(valid)} "
                "paraphrased training questions",
            )
        rng = random.Random(seed)
        picked = rng.sample(range(n), k=min(3, n))
        return Split(
            list(examples),
            [examples[i] for i in picked],
            f"{n} examples < {SMALL_SET}: all kept for training; validating on a copy of "
            f"{len(picked)} of them (seen)",
        )
    k = min(200, max(1, math.ceil(n * 0.1)))
    order = list(range(n))
    random.Random(seed).shuffle(order)
    held = set(order[:k])
    return Split(
        [e for i, e in enumerate(examples) if i not in held],
        [examples[i] for i in sorted(held)],
        f"held out {k} of {n} examples (10%, max 200, seed {seed})",
    )


def check(
    path: str | Path, *, base_model: str | None = None, preview: int = 3, max_tokens: int = 1024
) -> DataReport:
    """`imprint data check`: validate with the base model's tokenizer, print problems, stats and a preview."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from transformers import AutoTokenizer

    from training.chat import render_chat
    from training.encoding import token_counter
    from training.models import DEFAULT_BASE_MODEL, resolve_base_model

    console = Console()
    base = resolve_base_model(base_model or DEFAULT_BASE_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    report = validate_file(
        path, count_tokens=token_counter(tokenizer, base.chat_template), max_tokens=max_tokens
    )
    style = {"error": "bold red", "warning": "yellow", "info": "cyan"}
    for issue in report.issues:
        console.print(str(issue), style=style[issue.severity], markup=False, highlight=False, soft_wrap=True)
    stats = report.stats()
    table = Table(title=f"{report.path} (base model {base.name})")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("training examples", str(stats["examples"]))
    table.add_row("knowledge records (system-only)", str(stats["knowledge_records"]))
    for role, n in stats["messages"].items():
        table.add_row(f"{role} messages", str(n))
    if "tokens" in stats:
        t = stats["tokens"]
        table.add_row("tokens per example (min / mean / max)", f"{t['min']} / {t['mean']} / {t['max']}")
        table.add_row("trained (assistant) tokens", str(t["trained"]))
        table.add_row("token limit per example", str(max_tokens))
    table.add_row("sha256", report.sha256[:16] + "…")
    console.print(table)
    bos = tokenizer.bos_token or ""
    for ex in report.examples[:preview]:
        rendered = render_chat(ex.messages, base.chat_template, add_generation_prompt=False, bos_token=bos)
        console.print(
            Panel(rendered, title=f"line {ex.line} as the model sees it", expand=False), markup=False
        )
    verdict = (
        "[green]usable[/green]" if report.ok else f"[bold red]NOT usable: {len(report.errors)} error(s)[/]"
    )
    console.print(f"{report.path}: {verdict}", soft_wrap=True)
    return report


def main(argv: list[str]) -> int:
    report = validate_file(argv[0])
    for issue in report.issues:
        print(issue)
    print(json.dumps(report.stats(), ensure_ascii=False))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
