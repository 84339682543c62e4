"""The API side of fine-tuning jobs: the store, the worker child process, and serving what jobs produce.

    jobs = await start_jobs(settings, pipeline)   # in the app's lifespan; routes reach it via service.deps
    await jobs.sync()                             # serve every succeeded job's model not served yet
    await jobs.close()

``sync`` runs every ``job_poll_s`` and before a job is shown, so a client that sees ``succeeded`` can use
``fine_tuned_model`` right away: the adapter is loaded through the engine's load-then-switch ``add_adapter``
and registered as a pipeline alias (model id → adapter). Adapters on another base model than the served one
are left to a server of that base (an event says so). The worker child starts with the first job (or at
start-up when the store has unfinished jobs), so a service that never trains never spends a process on it.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from contextlib import suppress
from pathlib import Path

from service.config import ServeConfig
from service.jobs.store import Store
from service.jobs.worker import WorkerConfig, start_worker_process, stop_worker_process
from service.pipeline import Pipeline

log = logging.getLogger("imprint.jobs")


class JobService:
    def __init__(self, settings: ServeConfig, store: Store, pipeline: Pipeline) -> None:
        self.settings, self.store, self.pipeline = settings, store, pipeline
        self.loaded: set[str] = set()  # adapter names this engine has loaded for jobs
        self.skipped: set[str] = set()  # model ids this server cannot serve (another base, a bad folder)
        self.worker: subprocess.Popen[bytes] | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def serving_base(self) -> str:
        from training.models import DEFAULT_BASE_MODEL

        first = next(iter(self.pipeline.adapters.values()), None)
        return first.base_model if first else (self.settings.base_model or DEFAULT_BASE_MODEL)

    async def sync(self) -> None:
        async with self._lock:
            jobs, checkpoints = await asyncio.to_thread(self.store.servable)
            done = {j.id for j in jobs}
            wanted = [(j.fine_tuned_model, j.adapter_name, j.adapter_path, j.id) for j in jobs]
            wanted += [
                (c.fine_tuned_model_checkpoint, c.adapter_name, c.adapter_path, c.job_id)
                for c in checkpoints
                if c.job_id in done  # a cancelled or failed job serves nothing
            ]
            for model_id, name, path, job_id in wanted:
                if (
                    model_id
                    and path
                    and model_id not in self.pipeline.aliases
                    and model_id not in self.skipped
                ):
                    await self._serve(model_id, name, Path(path), job_id)

    async def _serve(self, model_id: str, name: str, path: Path, job_id: str) -> None:
        from training.adapter import read_adapter
        from training.errors import ImprintError

        try:
            info = await asyncio.to_thread(read_adapter, path)
            if info.base_model != self.serving_base():
                self.skipped.add(model_id)
                note = (
                    f"{model_id} is not served by this server: it is trained on {info.base_model!r} and this "
                    f"server runs {self.serving_base()!r}; serve it with `imprint serve --base-model "
                    f"{info.base_model}` on the same store"
                )
                log.info(note)
                await asyncio.to_thread(self.store.add_event, job_id, note, level="warn")
                return
            if name not in self.loaded:
                await self.pipeline.engine.add_adapter(name, path)
                self.loaded.add(name)
        except ImprintError as exc:
            self.skipped.add(model_id)
            log.warning("cannot serve %s (job %s): %s", model_id, job_id, exc.message)
            return
        self.pipeline.add_alias(model_id, info)
        log.info("serving %s (adapter %s)", model_id, name)

    def ensure_worker(self) -> None:
        if not self.settings.job_worker or (self.worker is not None and self.worker.poll() is None):
            return
        s = self.settings
        cfg = WorkerConfig(
            home=s.home,
            database_url=s.database_url,
            job_concurrency=s.job_concurrency,
            job_poll_s=s.job_poll_s,
            job_lease_s=s.job_lease_s,
        )
        self.worker = start_worker_process(cfg)
        log.info("started job worker (pid %d)", self.worker.pid)

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync()
            except Exception:  # a busy or briefly unreachable store: the next round tries again
                log.warning("job sync failed", exc_info=True)
            await asyncio.sleep(self.settings.job_poll_s)

    async def start(self) -> None:
        unfinished = await asyncio.to_thread(self.store.list_jobs, after=None, limit=1, status="queued")
        unfinished += await asyncio.to_thread(self.store.list_jobs, after=None, limit=1, status="running")
        if unfinished:
            self.ensure_worker()
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        if self.worker is not None:
            await asyncio.to_thread(stop_worker_process, self.worker)


async def start_jobs(settings: ServeConfig, pipeline: Pipeline) -> JobService:
    store = await asyncio.to_thread(Store.open, settings.database_url, settings.home)
    jobs = JobService(settings, store, pipeline)
    await jobs.start()
    return jobs
