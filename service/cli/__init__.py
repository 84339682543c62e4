"""The `imprint` command line — the ONE composition root: it may import every package, nothing imports it.

    imprint --help
    imprint data check eval/examples/family/train.jsonl
    imprint train --training-file eval/examples/family/train.jsonl --output .imprint/adapters/family
    imprint eval --questions eval/examples/family/questions.jsonl --adapter .imprint/adapters/family
    imprint index docs/ --kb shop && imprint search "价格" --kb shop
    imprint serve --adapter .imprint/adapters/family --kb shop

Every command parses its flags, loads the entry point's typed config (defaults < ``--config`` YAML <
``IMPRINT_*`` env < flags; ``training.config``) and calls one library function. Heavy imports (torch,
chromadb) happen inside the commands so `--help` stays instant. Exit codes: 0 ok, 2 a problem with the input
(config, data, a name that does not exist — the message lists every problem and the fix), 3 training
interrupted (resumable), 1 finished with problems (e.g. files skipped while indexing).
"""

from __future__ import annotations

import os

# Shared 2-core machines: idle OpenMP threads must sleep, not spin. Set before anything imports torch/OpenMP,
# so `imprint …` behaves the same whether started by make or by hand.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from service.cli import (  # noqa: F401 — register the commands
    adapters_cmds,
    index_cmds,
    jobs_cmds,
    schedule_cmds,
    serve_cmds,
    training_cmds,
)
from service.cli._app import app

__all__ = ["app"]
