"""Where Imprint keeps its data, shared by every package.

- ``$IMPRINT_HOME`` (default ``./.imprint``): knowledge bases (``kb/``), adapters, jobs, reports.
- ``$IMPRINT_CACHE`` (default ``~/.cache/imprint``): converted base models, reused across runs and clones so
  the GGUF → safetensors conversion happens once per machine.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def imprint_home() -> Path:
    return Path(os.environ.get("IMPRINT_HOME", ".imprint")).expanduser().resolve()


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imprint"
    return Path(os.environ.get("IMPRINT_CACHE", default)).expanduser().resolve()


def imprint_version() -> str:
    try:
        return version("imprint")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+local"
