"""Serving the registry: each name's promoted version answers ``imprint-adapter:NAME`` and the routed
``imprint`` model, on this replica, hot (no restart) and atomic.

    serving = RegistryServing(registry, pipeline)
    await serving.prepare(version_record)     # load it into the engine beside what serves (4xx if it can't)
    await serving.apply()                     # serve every name's promoted version (called every poll)

Atomic: every version is loaded into the engine under its own engine name (the job's adapter name), and a
promotion only swaps the pipeline's entry for NAME to the new version's ``AdapterInfo`` (``served_as`` =
that engine name) — one dict assignment on the event loop. A request plans with one entry and generates
with the engine adapter that entry names, so it is answered wholly by the old or wholly by the new version.
Other replicas on the same database notice the name's new ``revision`` within one poll (``job_poll_s``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from service.lifecycle.registry import AdapterVersionRecord, Registry
from training.adapter import AdapterInfo, read_adapter
from training.errors import ImprintError

log = logging.getLogger("imprint.lifecycle")


class RegistryServing:
    def __init__(self, registry: Registry, pipeline: Any) -> None:
        self.registry, self.pipeline = registry, pipeline
        self.served: dict[str, int] = {}  # name → the registry revision this replica serves
        self.versions: dict[str, int] = {}  # name → the version number this replica serves
        self._lock = asyncio.Lock()

    async def prepare(self, rec: AdapterVersionRecord) -> AdapterInfo:
        """The version loaded in the engine (load-then-switch; a failure is a 4xx, nothing else changes)."""
        info = await asyncio.to_thread(read_adapter, Path(rec.path))
        self.pipeline.check_compatible(info)
        if rec.engine_name not in self.pipeline.engine.adapters():
            await self.pipeline.engine.add_adapter(rec.engine_name, Path(rec.path))
        return info.model_copy(update={"name": rec.name, "served_as": rec.engine_name})

    async def apply(self) -> list[str]:
        """Serve each name's promoted version where this replica serves another; the names that changed."""
        async with self._lock:
            revisions = await asyncio.to_thread(self.registry.revisions)
            changed = []
            for name, revision in revisions.items():
                if self.served.get(name) == revision:
                    continue
                rec = await asyncio.to_thread(self.registry.promoted, name)
                # A version this replica cannot serve (another base model, a folder it cannot reach) is
                # logged once and left; the name's next change is tried again.
                self.served[name] = revision
                if rec is not None and not await self._serve(rec):
                    continue
                changed.append(name)
            return changed

    async def _serve(self, rec: AdapterVersionRecord) -> bool:
        try:
            info = await self.prepare(rec)
        except ImprintError as exc:
            log.warning("cannot serve %s v%d: %s", rec.name, rec.version, exc.message)
            return False
        self.pipeline.add_adapter(info)  # the switch
        self.pipeline.stale.pop(rec.name, None)  # what the old version got wrong says nothing about this one
        self.versions[rec.name] = rec.version
        log.info("serving %s v%d (%s)", rec.name, rec.version, rec.engine_name)
        return True
