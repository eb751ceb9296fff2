"""Claims race for real: several threads and several OS processes claim from one queue at once,
each with its own connection, until it is empty. Every job is claimed exactly once (PostgreSQL:
FOR UPDATE SKIP LOCKED; SQLite: one guarded UPDATE ... RETURNING)."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from helpers.clock import FakeClock
from tidegate.services import images, jobs
from tidegate.store.db import Database, DatabaseUnavailableError

JOBS = 120
THREADS = 6
PROCESSES = 3

# A claimer process: claims until the queue is empty, prints one claimed job id per line.
CLAIMER = """
import sys
from datetime import datetime
from tidegate.services import jobs
from tidegate.store.db import Database
db = Database(sys.argv[1])
now = datetime.fromisoformat(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # the start line: every claimer starts at once
while True:
    with db.session() as session:
        job = jobs.claim(session, worker=sys.argv[3], now=now, lease_seconds=600)
    if job is None:
        break
    print(job.id, flush=True)
db.dispose()
"""


def _fill(database: Database, clock: FakeClock) -> set[int]:
    with database.session() as session:
        for n in range(JOBS):
            images.register_reference(
                session, reference=f"127.0.0.1:1/load/app-{n}:1", actor="tests", now=clock()
            )
        return {j.id for j in jobs.list_jobs(session, limit=JOBS).jobs}


def _claim_all(
    database: Database, clock: FakeClock, worker: str, out: list[int], go: threading.Event
) -> None:
    go.wait(60)
    while True:
        try:
            with database.session() as session:
                job = jobs.claim(session, worker=worker, now=clock(), lease_seconds=600)
        except DatabaseUnavailableError:  # SQLite: a writer waited past its busy timeout
            continue
        if job is None:
            return
        out.append(job.id)


def test_concurrent_claimers_never_claim_a_job_twice(
    database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    queued = _fill(database, clock)
    assert len(queued) == JOBS
    env_path = str(Path(__file__).resolve().parents[2] / "src")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, database.url, clock().isoformat(), f"proc-{i}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        for i in range(PROCESSES)
    ]
    claimed: list[list[int]] = [[] for _ in range(THREADS)]
    go = threading.Event()
    threads = [
        threading.Thread(target=_claim_all, args=(database, clock, f"thread-{i}", claimed[i], go))
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    go.set()
    for thread in threads:
        thread.join(120)
    by_process = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)  # stdin closed here; the start line was sent
        assert proc.returncode == 0, err
        by_process.append([int(line) for line in out.split()])
    everything = [i for ids in claimed + by_process for i in ids]
    twice = [job for job, n in Counter(everything).items() if n > 1]
    assert twice == []
    assert set(everything) == queued
    # Each claimer kind took part in the race (the queue is long enough for all of them).
    assert sum(map(len, claimed)) > 0
    assert sum(map(len, by_process)) > 0
    with database.session() as session:
        counts = jobs.queue_counts(session)
        assert counts["running"] == JOBS
        owners = {j.lease_owner for j in jobs.list_jobs(session, limit=JOBS).jobs}
        assert len(owners) > 1
