"""The job store on real SQLite (WAL) shared by processes: claiming is atomic (racing workers never take the
same job), a job whose worker stopped renewing its lease is taken over, and cancelling a queued job
is final."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from service.jobs.store import JobRecord, Store, new_id, now


def queued(store: Store, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        job = JobRecord(
            id=new_id("ftjob"), created_at=now(), status="queued", model="tiny-phi3",
            training_file="file-x", adapter_name="a",
        )  # fmt: skip
        store.add_job(job, ["queued"])
        ids.append(job.id)
    return ids


def claim_all(home: str, worker: str, out: multiprocessing.Queue, start: object) -> None:  # type: ignore[type-arg]
    store = Store.open(None, Path(home))
    start.wait()  # type: ignore[attr-defined]  # all at once: a real race
    taken = []
    while (job := store.claim(worker, lease_s=600)) is not None:
        taken.append(job.id)
    out.put(taken)


def test_racing_workers_never_take_the_same_job(tmp_path: Path) -> None:
    ids = queued(Store.open(None, tmp_path), 100)
    ctx = multiprocessing.get_context("spawn")
    out, start = ctx.Queue(), ctx.Barrier(4)
    procs = [ctx.Process(target=claim_all, args=(str(tmp_path), f"w{i}", out, start)) for i in range(4)]
    for p in procs:
        p.start()
    taken = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    flat = [j for t in taken for j in t]
    assert sorted(flat) == sorted(ids)  # every job once, none twice
    assert sum(1 for t in taken if t) >= 2  # they really raced


def test_an_expired_lease_is_taken_over_and_cancel_of_a_queued_job_is_final(tmp_path: Path) -> None:
    store = Store.open(None, tmp_path)
    first, second = queued(store, 2)
    job = store.claim("w1", lease_s=2)
    assert job is not None and job.id == first and job.attempts == 1
    assert store.heartbeat(first, "w1", lease_s=2) == (True, False)
    assert store.request_cancel(second).status == "cancelled"
    assert store.claim("w2", lease_s=2) is None  # first is leased, second cancelled
    time.sleep(2.2)  # w1 went quiet
    again = store.claim("w2", lease_s=2)
    assert again is not None and again.id == first and again.attempts == 2 and again.worker == "w2"
    assert store.heartbeat(first, "w1", lease_s=2) == (False, False)  # w1 learns it lost the job
