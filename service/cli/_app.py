"""The typer apps every command module registers on, and the one way commands turn errors into exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from training.errors import ImprintError

# Markdown: docstring paragraphs wrap to the terminal instead of keeping the source's line breaks.
_TYPER: dict[str, Any] = {"no_args_is_help": True, "rich_markup_mode": "markdown"}
app = typer.Typer(help="Imprint: hybrid RAG + LoRA fine-tune question answering.", **_TYPER)
data_app = typer.Typer(help="Validate and preview chat JSONL training data.", **_TYPER)
adapters_app = typer.Typer(help="Inspect trained adapters.", **_TYPER)
kb_app = typer.Typer(help="Manage knowledge bases.", **_TYPER)
app.add_typer(data_app, name="data")
app.add_typer(adapters_app, name="adapters")
app.add_typer(kb_app, name="kb")

EXIT_OK, EXIT_PROBLEMS, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 3
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_INPUT) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def reports_errors(fn: F) -> F:
    """Domain errors → their message on stderr (it names the problem and the fix) and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ImprintError as exc:
            raise fail(exc.message) from None

    return wrapper  # type: ignore[return-value]
