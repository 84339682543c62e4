"""Start-up housekeeping: sweep the temp folders a killed writer left behind (``training.fileio``'s
``.NAME.tmp-*``), e.g. a half-saved adapter, so they do not pile up next to the real ones.

    removed = clean_orphaned_temps(settings)     # called by service.state.start_state
"""

from __future__ import annotations

import logging
from pathlib import Path

from service.config import ServeConfig
from training.fileio import clean_orphans
from training.paths import imprint_home

log = logging.getLogger("imprint.service")


def writer_folders(settings: ServeConfig) -> list[Path]:
    """Where Imprint's writers publish: the adapter roots, the served adapters' folders, $IMPRINT_HOME."""
    home = Path(settings.home or imprint_home()).expanduser().resolve()
    folders = [*settings.allowed_adapter_roots(), *(Path(a).resolve().parent for a in settings.adapters)]
    folders += [home, home / "jobs", home / "reports"]
    return list(dict.fromkeys(folders))


def clean_orphaned_temps(settings: ServeConfig, *, older_than_s: float = 3600.0) -> list[Path]:
    """Remove orphaned temp entries untouched for ``older_than_s`` (a writer working now is never hit)."""
    removed = [
        p for folder in writer_folders(settings) for p in clean_orphans(folder, older_than_s=older_than_s)
    ]
    for path in removed:
        log.warning("removed %s, left behind by an interrupted write", path)
    return removed
