"""The `imprint` command line: one thin layer over the packages.

    imprint --help
    imprint data check eval/examples/family/train.jsonl
    imprint train --training-file eval/examples/family/train.jsonl --output .imprint/adapters/family
    imprint eval --questions eval/examples/family/questions.jsonl --adapter .imprint/adapters/family
    imprint index docs/ --kb shop && imprint search "价格" --kb shop
    imprint serve --adapter .imprint/adapters/family --kb shop

Every command parses its flags, builds the entry point's typed config (which validates itself) and calls one
library function. Heavy imports (torch, chromadb) happen inside the commands so `--help` stays instant.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Imprint: hybrid RAG + LoRA fine-tune question answering.", no_args_is_help=True)
data_app = typer.Typer(help="Validate and preview chat JSONL training data.", no_args_is_help=True)
adapters_app = typer.Typer(help="Inspect trained adapters.", no_args_is_help=True)
kb_app = typer.Typer(help="Manage knowledge bases.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(adapters_app, name="adapters")
app.add_typer(kb_app, name="kb")


# ── training (data check, train, adapters, eval) ────────────────────────────────────────────────────────────


# ── indexing (index, search, kb) ─────────────────────────────────────────────────────────────────────────────


# ── service (serve, demo) ────────────────────────────────────────────────────────────────────────────────────


if __name__ == "__main__":
    app()
