"""Scheduled retraining: when the training file changes (sha256), train a NEW versioned adapter
(``ROOT/NAME-v1``, ``NAME-v2`` …), then hot-load it into running services and vLLM servers under the same
name.
A failed run keeps the old adapter serving and the state untouched, so the next run retries.

    imprint retrain --training-file data.jsonl --adapters-root .imprint/adapters --name family \
        --service-url http://127.0.0.1:8000 --cron "0 3 * * *"
    imprint retrain ... --once          # one check now (what the scheduler runs each time)

State: ``ROOT/.retrain-NAME.json`` (last trained sha256, current version, history), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import httpx
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from training.config import Settings
from training.fileio import atomic_write_json

log = logging.getLogger("imprint.retrain")


class RetrainConfig(Settings):
    model_config = SettingsConfigDict(env_prefix="IMPRINT_RETRAIN_")
    config_title: ClassVar[str] = "invalid retrain config"

    training_file: Path
    adapters_root: Path
    name: str
    base_model: str | None = None
    kb: str | None = None
    reading_examples: int = Field(default=0, ge=0)
    service_urls: list[str] = Field(default_factory=list)
    vllm_urls: list[str] = Field(default_factory=list)
    api_key: str | None = None
    cron: str | None = None
    every_s: int | None = Field(default=None, ge=10)
    train_overrides: dict[str, Any] = Field(default_factory=dict)  # e.g. n_epochs for tests

    def problems(self) -> list[str]:
        problems = []
        if not self.training_file.is_file():
            problems.append(f"training_file: {self.training_file} does not exist")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.name):
            problems.append(f"name: {self.name!r} must be 1–40 letters, digits, '-' or '_'")
        if self.cron and self.every_s:
            problems.append("cron: give --cron or --every, not both")
        if self.cron:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron)
            except ValueError as exc:
                problems.append(f"cron: {self.cron!r} is not a crontab line ({exc}); e.g. '0 3 * * *'")
        for url in [*self.service_urls, *self.vllm_urls]:
            if not url.startswith(("http://", "https://")):
                problems.append(f"url: {url!r} must start with http:// or https://")
        return problems

    @property
    def state_file(self) -> Path:
        return self.adapters_root / f".retrain-{self.name}.json"


@dataclass
class RetrainResult:
    status: Literal["unchanged", "trained", "failed"]
    sha256: str
    version: Path | None = None
    hot_loaded: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def summary(self) -> str:
        head = {
            "unchanged": f"unchanged (sha256 {self.sha256[:12]}); nothing to do",
            "trained": f"trained {self.version} (sha256 {self.sha256[:12]})",
            "failed": f"FAILED for sha256 {self.sha256[:12]}; the previous adapter keeps serving",
        }[self.status]
        lines = [head] + [f"  hot-loaded into {u}" for u in self.hot_loaded]
        return "\n".join(lines + [f"  error: {e}" for e in self.errors])


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_state(cfg: RetrainConfig) -> dict[str, Any]:
    if cfg.state_file.is_file():
        return json.loads(cfg.state_file.read_text(encoding="utf-8"))
    return {"sha256": None, "current": None, "history": []}


def write_state(cfg: RetrainConfig, state: dict[str, Any]) -> None:
    atomic_write_json(cfg.state_file, state)


def next_version(cfg: RetrainConfig) -> Path:
    taken = [
        int(m.group(1))
        for p in cfg.adapters_root.glob(f"{cfg.name}-v*")
        if (m := re.fullmatch(rf"{re.escape(cfg.name)}-v(\d+)", p.name))
    ]
    return cfg.adapters_root / f"{cfg.name}-v{max(taken, default=0) + 1}"


def train_version(cfg: RetrainConfig, output: Path) -> Path:
    from training.train import TrainConfig, train

    tc = TrainConfig.build(
        training_file=cfg.training_file,
        output=output,
        suffix=cfg.name,
        base_model=cfg.base_model,
        kb=cfg.kb,
        reading_examples=cfg.reading_examples,
        progress=False,
        **cfg.train_overrides,
    )
    search = None
    if cfg.kb is not None:
        from indexing.registry import get_kb

        kb = get_kb(cfg.kb)
        search = lambda q: kb.search(q, k=3)  # noqa: E731
    return train(tc, search=search)


def hot_load(cfg: RetrainConfig, adapter: Path) -> tuple[list[str], list[str]]:
    """Load ``adapter`` into every configured service (POST /v1/adapters) and vLLM (unload + load)."""
    headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
    done, errors = [], []
    with httpx.Client(timeout=300, headers=headers) as client:
        for url in cfg.service_urls:
            try:
                r = client.post(url.rstrip("/") + "/v1/adapters", json={"path": str(adapter.resolve())})
                r.raise_for_status()
                done.append(url)
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {exc!r} {getattr(getattr(exc, 'response', None), 'text', '')[:200]}")
        for url in cfg.vllm_urls:
            try:
                client.post(url.rstrip("/") + "/v1/unload_lora_adapter", json={"lora_name": cfg.name})
                r = client.post(
                    url.rstrip("/") + "/v1/load_lora_adapter",
                    json={"lora_name": cfg.name, "lora_path": str(adapter.resolve())},
                )
                r.raise_for_status()
                done.append(url)
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {exc!r}")
    return done, errors


def run_once(cfg: RetrainConfig) -> RetrainResult:
    """One scheduler tick: retrain if the training file changed since the last successful run."""
    sha = file_sha256(cfg.training_file)
    state = read_state(cfg)
    if state["sha256"] == sha:
        return RetrainResult("unchanged", sha, Path(state["current"]) if state["current"] else None)
    output = next_version(cfg)
    log.info("training file changed (%s) → training %s", sha[:12], output)
    try:
        adapter = train_version(cfg, output)
    except Exception as exc:  # any failure: keep serving the old adapter, retry next tick
        log.exception("retraining failed; keeping %s", state["current"])
        shutil.rmtree(output, ignore_errors=True)
        return RetrainResult(
            "failed",
            sha,
            Path(state["current"]) if state["current"] else None,
            errors=[f"{type(exc).__name__}: {exc}"],
        )
    state["history"].append(
        {
            "version": str(adapter),
            "sha256": sha,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    state.update(sha256=sha, current=str(adapter))
    write_state(cfg, state)
    loaded, errors = hot_load(cfg, adapter)
    return RetrainResult("trained", sha, adapter, loaded, errors)


def run_scheduler(cfg: RetrainConfig) -> None:
    """Block, running ``run_once`` on the cron schedule or every N seconds (default hourly)."""
    from apscheduler.schedulers.blocking import BlockingScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    trigger = CronTrigger.from_crontab(cfg.cron) if cfg.cron else IntervalTrigger(seconds=cfg.every_s or 3600)
    scheduler = BlockingScheduler(timezone="UTC")

    def tick() -> None:
        log.info(run_once(cfg).summary())

    # max_instances=1 + coalesce: a slow training run never overlaps the next tick or queues a backlog.
    scheduler.add_job(tick, trigger, max_instances=1, coalesce=True, next_run_time=datetime.now(UTC))
    log.info("retraining %s from %s on %s", cfg.name, cfg.training_file, trigger)
    scheduler.start()
