"""Several ``imprint serve`` replicas on one PostgreSQL database (a real server from Debian's ``postgresql``
package, started for the test): a promotion or rollback on one replica is served by the other within
seconds, a schedule tick fires once, and workers on several machines take different jobs.

The replicas are two instances of the real app on uvicorn (each its own engine, pipeline and store
connections), talking to each other only through the database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from service.jobs.store import Store
from service.lifecycle.registry import Registry
from tests.conftest import FAMILY_TRAIN
from tests.service.postgres import bindir, postgres_server
from tests.service.test_jobs_store import queued

pytestmark = [
    pytest.mark.slow,  # a database server's start-up and two replicas: about 30 s, beyond the fast tier
    pytest.mark.skipif(bindir() is None, reason="PostgreSQL is not installed (make test installs it)"),
]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def answer(url: str, model: str) -> str:
    c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
    r = c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "老大是谁?"}], max_tokens=8, temperature=0
    )
    return r.choices[0].message.content or ""


def served_version(url: str, want: int, timeout_s: float = 10) -> float:
    """Seconds until the replica at ``url`` serves version ``want`` of "family"."""
    t0 = time.monotonic()
    while True:
        data = httpx.get(f"{url}/v1/adapters/family").json()
        if data.get("served_version") == want:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout_s:
            break
        time.sleep(0.1)
    raise AssertionError(f"{url} does not serve family v{want} after {timeout_s} s: {data}")


def test_promotion_and_rollback_reach_every_replica(
    serve: Any, tiny_adapters: dict[str, Path], pg_url: str, tmp_path: Path
) -> None:
    reg = Registry(Store.open(pg_url, tmp_path))
    for name in ("alpha", "beta"):  # two versions of "family": the alpha and beta folders
        reg.add_version("family", str(tiny_adapters[name]), engine_name=f"family-{name}")
    settings = {"home": tmp_path, "database_url": pg_url, "job_poll_s": 0.3, "job_worker": False}
    with ExitStack() as stack:
        a, b = (stack.enter_context(serve(**settings)) for _ in range(2))
        alpha, beta = answer(a, "imprint-adapter:alpha"), answer(a, "imprint-adapter:beta")
        assert alpha != beta  # the two versions are told apart by what they say

        assert httpx.post(f"{a}/v1/adapters/family/promote", json={"version": 1}).status_code == 200
        assert served_version(a, 1, timeout_s=0) < 1  # the replica asked serves it when it answers
        served_version(b, 1)
        assert answer(b, "imprint-adapter:family") == alpha == answer(a, "imprint-adapter:family")

        assert httpx.post(f"{b}/v1/adapters/family/promote", json={"version": 2}).status_code == 200
        served_version(a, 2)
        assert answer(a, "imprint-adapter:family") == beta

        r = httpx.post(f"{a}/v1/adapters/family/rollback", json={"reason": "replica test"})
        assert r.status_code == 200 and r.json()["promoted_version"] == 1
        served_version(b, 1)
        assert answer(b, "imprint-adapter:family") == alpha
        history = httpx.get(f"{b}/v1/adapters/family").json()["history"]
        assert [(h["action"], h["version"]) for h in history] == [
            ("promote", 1),
            ("promote", 2),
            ("rollback", 1),
        ]


def test_a_schedule_tick_fires_once_across_replicas(serve: Any, pg_url: str, tmp_path: Path) -> None:
    data = tmp_path / "family.jsonl"
    data.write_bytes(FAMILY_TRAIN.read_bytes())
    settings = {"home": tmp_path, "database_url": pg_url, "job_poll_s": 0.2, "job_worker": False}
    with ExitStack() as stack:
        a, b = (stack.enter_context(serve(**settings)) for _ in range(2))
        body = {"adapter": "fam-sched", "training_path": "family.jsonl", "every_s": 1, "model": "tiny-phi3"}
        sched = httpx.post(f"{a}/v1/schedules", json=body).json()["id"]
        c = openai.OpenAI(base_url=b + "/v1", api_key="x", max_retries=0)

        def made() -> list[str]:
            return [
                j.id
                for j in c.fine_tuning.jobs.list(limit=100).data
                if (j.metadata or {}).get("schedule") == sched
            ]

        deadline = time.monotonic() + 20
        while not made() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)  # several more ticks on both replicas: the data did not change
        assert len(made()) == 1
        data.write_text(
            data.read_text(encoding="utf-8") + data.read_text(encoding="utf-8").splitlines()[1] + "\n"
        )
        deadline = time.monotonic() + 20
        while len(made()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        assert len(made()) == 2


def test_workers_on_several_machines_take_different_jobs(pg_url: str, tmp_path: Path) -> None:
    ids = queued(Store.open(pg_url, tmp_path), 60)
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        store = Store.open(pg_url, tmp_path)  # its own connections, as on another machine
        start.wait()
        mine = []
        while (job := store.claim(name, lease_s=600)) is not None:
            mine.append(job.id)
        taken[name] = mine

    threads = [threading.Thread(target=worker, args=(f"machine-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    every = [j for mine in taken.values() for j in mine]
    assert len(every) == len(set(every)), "a job was taken twice"
    assert set(ids) <= set(every), (
        "a job was never taken"
    )  # (the schedule test's queued jobs may be there too)
    assert sum(1 for mine in taken.values() if mine) >= 2  # the work was really shared
