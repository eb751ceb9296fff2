"""Ingest benchmark: pushes -> registry webhook -> scan jobs -> remote scanners -> verdicts.

Real parts only: a console served by uvicorn on 127.0.0.1 over a throwaway PostgreSQL cluster
(tests/helpers/postgres.py), a real `docker-registry` whose notifications point at the console's
webhook (`POST /api/v1/registries/{name}/webhook`, authenticated by the registry's secret), real
`skopeo copy` pushes (8 at a time) of small real images with distinct digests (the busybox test
image plus a one-file layer naming the variant, built once with umoci and cached under
~/.cache/tidegate-bench/ingest-variants-N, or $TIDEGATE_BENCH_CACHE), and N real
`tidegate scanner` processes (one job at a time each) working the queue. The console runs no
embedded worker, so the N scanners are the only workers.

Figures, for each worker count (default 1, 2 and 4; each run on a fresh database and registry):
- images/minute: images pushed / (last verdict - first push started);
- push-to-verdict latency: from the moment `skopeo copy` of an image returned (its manifest is
  in the registry) to the moment its job was done (the verdict stored), p50/p90/p99/max.
And the webhook alone (no registry, no scanner), on SQLite and on PostgreSQL (`--db`): distinct-
digest push events posted by 16 client threads of a separate process (http.client on kept-alive
connections: a light load generator, since client and console share this machine's CPUs), one
event per request, on a fresh database: events/s accepted (target >= 500/s: the endpoint
authenticates, parses and records the delivery, concurrent requests sharing one commit; the
console's ingester registers images and queues scan jobs meanwhile). In the same run, on its own
fresh database, the floor: a bare FastAPI endpoint that INSERTs the body, one transaction per
request (same Database, same uvicorn, same client), in requests/s, and the ratio of the two; and
the rate at which every event ended up ingested (image + scan job), counted from the first POST.
Each server gets one request of the measured path before the clock starts (FastAPI builds its
routes' state on the first request that walks past them).

The ingest runs run once per worker count (each is --images pushes); `--repeat` repeats the
webhook measurement. Scanners match against no vulnerability DB: matching cost belongs to the
scan benchmark, not to ingest. `--check` exits 1 when the webhook misses its target.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jobs"), str(ROOT / "src")]

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import Depends, FastAPI, Request  # noqa: E402
from sqlalchemy import Column, Integer, MetaData, Table, Text, func, insert, select  # noqa: E402
from variants import build_variants  # noqa: E402

from helpers import images, postgres  # noqa: E402
from tidegate.console.app import create_app  # noqa: E402
from tidegate.console.settings import Settings  # noqa: E402
from tidegate.core.roles import Role  # noqa: E402
from tidegate.services.registries import RegistrySpec, create_registry  # noqa: E402
from tidegate.services.tokens import issue_token  # noqa: E402
from tidegate.store.db import Database  # noqa: E402
from tidegate.store.deliveries import DeliveryStatus, WebhookDeliveryRow  # noqa: E402
from tidegate.store.jobs import ScanJobRow  # noqa: E402

NAME = "ingest"
CACHE = Path(os.environ.get("TIDEGATE_BENCH_CACHE", Path.home() / ".cache" / "tidegate-bench"))
SECRET = "bench-webhook-secret-0123456789"
KEY = "bench-operator-key-0123456789abcdef"
WEBHOOK = "/api/v1/registries/bench/webhook"
WEBHOOK_TARGET = 500.0
PUSHERS = 8
POSTERS = 16
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def variant_layout(count: int) -> Path:
    """The cached layout of `count` variants (built once, renamed into place when complete)."""
    final = CACHE / f"ingest-variants-{count}"
    if not (final / "layout" / "index.json").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".ingest-variants-{count}.", dir=CACHE))
        print(f"building {count} variant images (once) in {final} ...", file=sys.stderr)
        build_variants(work, count, images.busybox_layout())
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    return final / "layout"


# --- the console -------------------------------------------------------------------------------


@contextmanager
def console(cluster: postgres.PostgresCluster, work: Path) -> Iterator[tuple[str, Database]]:
    """A console on a fresh database, served by uvicorn; (base URL, its database)."""
    name = cluster.create_database()
    database = Database(cluster.url(name))
    database.migrate()
    settings = Settings(
        environment="development",
        data_dir=work / "console",
        database_url=database.url,
        embedded_workers=0,
        scheduler_interval=1.0,
        encryption_key=KEY,  # type: ignore[call-arg,unused-ignore]
    )
    app = create_app(settings, clock=lambda: datetime.now(UTC))
    try:
        with served(app) as base:
            yield base, database
    finally:
        database.dispose()
        cluster.drop_database(name)


def token(database: Database, role: Role) -> str:
    with database.session() as session:
        issued = issue_token(
            session, name=f"bench-{role}", role=role, now=datetime.now(UTC), actor="bench"
        )
        return issued.secret


def add_registry(base: str, admin: str, url: str) -> str:
    body = {"name": "bench", "url": url, "webhook_secret": SECRET}
    answer = httpx.post(
        f"{base}/api/v1/registries", json=body, headers={"Authorization": f"Bearer {admin}"}
    )
    if answer.status_code != 201:
        raise SystemExit(f"ingest_bench: registering the registry failed: {answer.text}")
    return f"{base}/api/v1/registries/bench/webhook"


# --- one ingest run ----------------------------------------------------------------------------


def scanners(base: str, secret: str, count: int, work: Path) -> list[subprocess.Popen[bytes]]:
    code = "import sys; from tidegate.cli.main import main; sys.exit(main())"
    env = {**os.environ, "TIDEGATE_DATA_DIR": str(work / "scanner")}
    env.pop("TIDEGATE_DB", None)
    argv = [sys.executable, "-c", code, "scanner", "--console", base, "--token", secret,
            "--poll-interval", "0.1", "-q"]  # fmt: skip
    return [
        subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]


def push_all(layout: Path, registry: images.Registry, count: int, work: Path) -> dict[str, float]:
    """skopeo-push every variant, PUSHERS at a time, each pusher to its own repository (the
    registry answers 500 to concurrent pushes reusing a blob in one repository); digest -> wall
    time the push returned."""

    def push(n: int) -> tuple[str, float]:
        digest_file = work / f"digest-{n}"
        dest = f"docker://{registry.host}/bench/app{n % PUSHERS}:v{n}"
        argv = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--retry-times", "3",
                "--digestfile", str(digest_file), f"oci:{layout}:v{n}", dest]  # fmt: skip
        done = subprocess.run(argv, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"ingest_bench: skopeo push of v{n} failed: {done.stderr[-2000:]}")
        return digest_file.read_text().strip(), time.time()

    def pusher(first: int) -> list[tuple[str, float]]:
        return [push(n) for n in range(first, count, PUSHERS)]

    with ThreadPoolExecutor(PUSHERS) as pool:
        return dict(pair for pairs in pool.map(pusher, range(PUSHERS)) for pair in pairs)


def wait_done(base: str, reader: str, count: int, limit: float) -> dict[str, int]:
    deadline = time.monotonic() + limit
    headers = {"Authorization": f"Bearer {reader}"}
    while time.monotonic() < deadline:
        counts: dict[str, int] = httpx.get(
            f"{base}/api/v1/scan-jobs", params={"limit": 1}, headers=headers
        ).json()["counts"]
        if counts["done"] + counts["dead"] >= count:
            return counts
        time.sleep(0.5)
    raise SystemExit(f"ingest_bench: the queue did not drain in {limit:.0f} s: {counts}")


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ingest_run(
    cluster: postgres.PostgresCluster, layout: Path, count: int, workers: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tidegate-ingest-") as tmp:
        work = Path(tmp)
        with console(cluster, work) as (base, database):
            admin = token(database, Role.ADMINISTRATOR)
            hook = f"{base}/api/v1/registries/bench/webhook"
            proc, registry = images.start_registry(
                work / "registry", notify=(hook, f"Bearer {SECRET}")
            )
            procs = scanners(base, token(database, Role.SCANNER), workers, work)
            try:
                add_registry(base, admin, f"http://{registry.host}")
                started = time.time()
                pushed = push_all(layout, registry, count, work)
                counts = wait_done(base, admin, count, limit=120 + count * 2.0)
            finally:
                for p in (*procs, proc):
                    p.terminate()
                for p in (*procs, proc):
                    p.wait(30)
            with database.session() as session:
                finished = {
                    digest: done.timestamp()
                    for digest, done in session.query(ScanJobRow.digest, ScanJobRow.finished)
                    if digest is not None and done is not None
                }
    latencies = [finished[d] - t for d, t in pushed.items() if d in finished]
    last = max(finished.values())
    return {
        "workers": workers,
        "images": count,
        "done": counts["done"],
        "dead": counts["dead"],
        "images_per_minute": round(count / (last - started) * 60, 1),
        "latency_s": {
            "p50": round(percentile(latencies, 0.50), 3),
            "p90": round(percentile(latencies, 0.90), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies), 3),
        },
        "missing_verdicts": count - len(latencies),
    }


# --- the webhook alone -------------------------------------------------------------------------


def push_event(n: int) -> bytes:
    digest = f"sha256:{n:064x}"
    event = {
        "id": f"e{n}", "timestamp": "2026-03-01T12:00:00Z", "action": "push",
        "target": {"mediaType": OCI_MANIFEST, "size": 708, "length": 708, "digest": digest,
                   "repository": f"bench/app{n % 50}", "tag": f"t{n}",
                   "url": f"http://127.0.0.1:9/v2/bench/app/manifests/{digest}"},
        "request": {"id": f"r{n}", "addr": "127.0.0.1", "host": "127.0.0.1:9", "method": "PUT",
                    "useragent": "bench"},
        "actor": {}, "source": {"addr": "127.0.0.1:9", "instanceID": "bench"},
    }  # fmt: skip
    return json.dumps({"events": [event]}).encode()


def post_load(url: str, events: int, clients: int) -> float:
    """POST `events` distinct push events to `url`, `clients` threads, one event per request;
    requests/s. Runs in its own process (`--post-load`), so the clients do not share the
    console's interpreter."""
    headers = {
        "Authorization": f"Bearer {SECRET}",
        "Content-Type": "application/vnd.docker.distribution.events.v1+json",
    }
    bodies = [push_event(n) for n in range(events)]

    target = urllib.parse.urlsplit(url)

    def post(chunk: range) -> None:
        # http.client on a kept-alive connection: a load generator that costs the machine
        # (two CPUs, shared with the console) a fraction of what httpx costs per request.
        connection = http.client.HTTPConnection(target.netloc, timeout=120)
        try:
            for n in chunk:
                connection.request("POST", target.path, body=bodies[n], headers=headers)
                answer = connection.getresponse()
                text = answer.read()
                if answer.status >= 300:
                    raise SystemExit(f"ingest_bench: {url} said {answer.status} {text!r}")
        finally:
            connection.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, [range(i, events, clients) for i in range(clients)]))
    return events / (time.perf_counter() - started)


def run_load(url: str, events: int) -> float:
    argv = [sys.executable, __file__, "--post-load", url, "--events", str(events)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingest_bench: the load of {url} failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip())


@contextmanager
def fresh_database(cluster: postgres.PostgresCluster | None, work: Path) -> Iterator[Database]:
    """A migrated database: a new one in the cluster, or a SQLite file in `work`."""
    name = cluster.create_database() if cluster is not None else None
    url = cluster.url(name) if cluster is not None and name else f"sqlite:///{work / 'db.sqlite'}"
    database = Database(url)
    try:
        database.migrate()
        yield database
    finally:
        database.dispose()
        if cluster is not None and name:
            cluster.drop_database(name)


@contextmanager
def served(app: FastAPI, warm: str | None = None) -> Iterator[str]:
    port = images.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise SystemExit("ingest_bench: the server did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    if warm is not None:
        # A GET of the measured path (405) before the clock starts: FastAPI builds the state of
        # the routes a request walks past the first time one does (~0.3 s for the console's
        # API), a one-off cost of a fresh process, not the steady rate measured here.
        httpx.get(f"{base}{warm}", timeout=30)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(30)


async def body_of(request: Request) -> bytes:
    return await request.body()


def baseline_app(database: Database) -> FastAPI:
    """The floor: a bare FastAPI endpoint that reads the body and INSERTs it, one row, in one
    transaction of the same Database (same engine, pool and SQLite pragmas) as the console."""
    table = Table(
        "bench_baseline", MetaData(), Column("id", Integer, primary_key=True),
        Column("body", Text, nullable=False),
    )  # fmt: skip
    table.create(database.engine)
    app = FastAPI()

    @app.post("/hook", status_code=202)
    def hook(body: Annotated[bytes, Depends(body_of)]) -> dict[str, int]:
        with database.session() as session:
            row_id = session.execute(insert(table).values(body=body.decode())).inserted_primary_key
        return {"id": int(row_id[0]) if row_id else 0}

    return app


def console_app(database: Database, work: Path) -> FastAPI:
    settings = Settings(
        environment="development", data_dir=work / "console", database_url=database.url,
        embedded_workers=0, scheduler=False, encryption_key=KEY,  # type: ignore[call-arg,unused-ignore]
    )  # fmt: skip
    with database.session() as session:
        spec = RegistrySpec(name="bench", url="http://127.0.0.1:9", webhook_secret=SECRET)
        create_registry(session, spec=spec, key=KEY, actor="bench", now=datetime.now(UTC))
    return create_app(settings, clock=lambda: datetime.now(UTC))


def wait_ingested(database: Database, events: int, limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with database.session() as session:
            pending = session.scalar(
                select(func.count()).where(WebhookDeliveryRow.status != DeliveryStatus.INGESTED)
            )
            queued = session.scalar(select(func.count()).select_from(ScanJobRow))
        if not pending and queued == events:
            return
        time.sleep(0.05)
    raise SystemExit(f"ingest_bench: {events} events not ingested in {limit:.0f} s")


def webhook_run(cluster: postgres.PostgresCluster | None, events: int) -> dict[str, float]:
    """Requests/s of the bare one-INSERT endpoint, then of the webhook (each event recorded;
    the console's ingester turning them into images and scan jobs meanwhile), and how long
    until every event was ingested, counted from the first POST."""
    with tempfile.TemporaryDirectory(prefix="tidegate-webhook-") as tmp:
        work = Path(tmp)
        with (
            fresh_database(cluster, work / "base") as database,
            served(baseline_app(database), warm="/hook") as base,
        ):
            baseline = run_load(f"{base}/hook", events)
        with (
            fresh_database(cluster, work / "hook") as database,
            served(console_app(database, work), warm=WEBHOOK) as base,
        ):
            started = time.perf_counter()
            rate = run_load(f"{base}{WEBHOOK}", events)
            wait_ingested(database, events, limit=60 + events * 0.1)
            ingested = events / (time.perf_counter() - started)
    return {"baseline": baseline, "webhook": rate, "ingested": ingested}


# --- main --------------------------------------------------------------------------------------


def parse(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="ingest_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1000, help="pushes per ingest run")
    p.add_argument("--workers", default="1,2,4", help="scanner counts, comma-separated")
    p.add_argument("--events", type=int, default=3000, help="webhook events per measurement")
    p.add_argument("--repeat", type=int, default=3, help="webhook measurements (median)")
    p.add_argument("--db", default="sqlite,postgresql", help="webhook databases, comma-separated")
    p.add_argument("--skip-ingest", action="store_true", help="measure the webhook only")
    p.add_argument("--json", action="store_true")
    p.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--post-load", metavar="URL", help=argparse.SUPPRESS)  # the load process
    return p.parse_known_args(list(argv))[0]


def report(figures: dict[str, Any]) -> None:
    for run in figures["ingest"]:
        lat = run["latency_s"]
        print(
            f"{run['workers']} worker(s): {run['images']} pushes, {run['images_per_minute']}"
            f" images/min; push->verdict p50 {lat['p50']} s, p90 {lat['p90']} s,"
            f" p99 {lat['p99']} s, max {lat['max']} s (done {run['done']}, dead {run['dead']})"
        )
    for db, hook in figures["webhook"].items():
        samples = ", ".join(f"{s:.0f}" for s in hook["samples"])
        print(
            f"webhook alone ({db}): {hook['events_per_s']:.0f} events/s (median of {samples};"
            f" target >= {WEBHOOK_TARGET:.0f}/s); bare one-INSERT endpoint in the same run"
            f" {hook['baseline_per_s']:.0f} requests/s (webhook/baseline {hook['ratio']:.2f});"
            f" all ingested (images + scan jobs) at {hook['ingested_per_s']:.0f} events/s"
        )


def webhook_figures(
    cluster: postgres.PostgresCluster | None, args: argparse.Namespace
) -> dict[str, Any]:
    runs = [webhook_run(cluster, args.events) for _ in range(max(1, args.repeat))]
    median = {k: statistics.median(r[k] for r in runs) for k in ("baseline", "webhook", "ingested")}
    return {
        "events_per_s": median["webhook"],
        "samples": [r["webhook"] for r in runs],
        "baseline_per_s": median["baseline"],
        "baseline_samples": [r["baseline"] for r in runs],
        "ratio": statistics.median(r["webhook"] / r["baseline"] for r in runs),
        "ingested_per_s": median["ingested"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.post_load:
        print(post_load(args.post_load, args.events, POSTERS))
        return 0
    dbs = [d.strip() for d in args.db.split(",") if d.strip()]
    reason = postgres.available() or (
        ", ".join(images.missing_tools("skopeo", "umoci", "docker-registry")) or None
    )
    if reason:
        print(f"ingest_bench: skipped: {reason}", file=sys.stderr)
        return 0
    cluster = postgres.PostgresCluster().start()
    try:
        figures: dict[str, Any] = {"ingest": [], "webhook": {}}
        if not args.skip_ingest:
            layout = variant_layout(args.images)
            for workers in (int(w) for w in args.workers.split(",")):
                run = ingest_run(cluster, layout, args.images, workers)
                print(f"ingest_bench: {json.dumps(run)}", file=sys.stderr)  # progress
                figures["ingest"].append(run)
        for db in dbs:
            figures["webhook"][db] = webhook_figures(cluster if db == "postgresql" else None, args)
            print(f"ingest_bench: webhook {db}: {json.dumps(figures['webhook'][db])}",
                  file=sys.stderr)  # fmt: skip
    finally:
        cluster.stop()
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        report(figures)
    missed = [d for d, f in figures["webhook"].items() if f["events_per_s"] < WEBHOOK_TARGET]
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
