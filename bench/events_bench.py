"""Audit event listing with 1,000,000 events stored, on SQLite and on PostgreSQL.

Events are bulk-inserted (SQLite: one executemany transaction; PostgreSQL: COPY into a throwaway
cluster started from /usr/lib/postgresql/15/bin), then three ways of reading one page of 100 are
timed, each on the first page and on a deep page (a cursor 90% of the way down):

- baseline: the plain indexed SELECT (`WHERE (ts, id) < (?, ?) ORDER BY ts DESC, id DESC
  LIMIT 101`), compiled once, run on the driver without the ORM: the least a listing must spend;
- service: `services.events.list_events` in a fresh session: ORM, domain objects, cursor;
- http: `GET /api/v1/events` through the app (TestClient): auth, validation, JSON;

for the unfiltered listing and for a category, an image and a combined filter. Every figure is
p50 / p99 in milliseconds over `--samples` calls, the median of `--repeat` rounds (samples
printed). The SELECTs use no OFFSET and no COUNT, so the deep page should cost what the first does.

Run: `.venv/bin/python bench/events_bench.py [--rows N] [--only sqlite|postgresql] [--json]
[--repeat N] [--samples N]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from helpers import postgres  # noqa: E402
from tidegate.console.app import create_app  # noqa: E402
from tidegate.console.settings import Settings  # noqa: E402
from tidegate.core.events import EventCategory, EventCursor, EventLevel  # noqa: E402
from tidegate.core.roles import Role  # noqa: E402
from tidegate.services.events import EventFilter, events_query, list_events  # noqa: E402
from tidegate.services.tokens import issue_token  # noqa: E402
from tidegate.store.db import Database  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
PAGE = 100
CATEGORIES = list(EventCategory)
LEVELS = [EventLevel.INFO] * 6 + [EventLevel.WARNING, EventLevel.DETECT, EventLevel.BLOCK]
IMAGES = [f"sha256:{i:064x}" for i in range(1000)]
COLUMNS = (
    "ts",
    "category",
    "level",
    "action",
    "actor",
    "image_digest",
    "policy",
    "message",
    "data",
)

SCENARIOS: dict[str, EventFilter] = {
    "all events": EventFilter(),
    "category=runtime": EventFilter(category=EventCategory.RUNTIME),
    "image=one digest": EventFilter(image_digest=IMAGES[7]),
    "runtime+block": EventFilter(category=EventCategory.RUNTIME, level=EventLevel.BLOCK),
}


@dataclass(frozen=True, slots=True)
class Figure:
    backend: str
    scenario: str
    page: str
    way: str
    p50_ms: float
    p99_ms: float
    p50_samples: list[float]


def _rows(count: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    step = SPAN / count
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        image = IMAGES[rng.randrange(len(IMAGES))] if i % 3 else None
        yield (
            START + step * i,
            str(category),
            str(rng.choice(LEVELS)),
            f"{category}.bench",
            f"user{i % 50}",
            image,
            f"policy-{i % 10}" if i % 2 else None,
            f"benchmark event {i} of category {category}",
            json.dumps({"i": i, "host": f"node-{i % 200}"}),
        )


def _fill_sqlite(db: Database, count: int) -> None:
    sql = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        rows = ((r[0].replace(tzinfo=None).isoformat(" "), *r[1:]) for r in _rows(count))
        cursor.executemany(sql, rows)
        raw.commit()
        cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def _fill_postgresql(db: Database, count: int) -> None:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        with cursor.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in _rows(count):
                copy.write_row(row)
        raw.commit()
        cursor.execute("ANALYZE events")
        raw.commit()
    finally:
        raw.close()


def _deep_cursor(db: Database, filters: EventFilter, count: int) -> EventCursor | None:
    """The cursor 90% of the way down this listing (found once, by OFFSET, outside the timing)."""
    query = events_query(filters, None, 1).offset(int(count * 0.9))
    with db.session() as session:
        row = session.scalars(query).first()
    return EventCursor(ts=row.ts, id=row.id) if row is not None else None


def _matching(db: Database, filters: EventFilter, total: int) -> int:
    if filters == EventFilter():
        return total
    with db.engine.connect() as connection:
        query = events_query(filters, None, total).with_only_columns(text("1"))
        return len(connection.execute(query).all())


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def _time(call: Callable[[], object], samples: int) -> tuple[float, float]:
    call()  # warm caches, compile statements
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return _percentiles(times)


def _ways(
    db: Database, client: TestClient, headers: dict[str, str], f: EventFilter, after: Any
) -> dict[str, Callable[[], object]]:
    compiled = events_query(f, after, PAGE + 1).compile(db.engine)
    sql = str(compiled)
    bound = compiled.construct_params()
    # The driver's own parameter forms: SQLite's qmark takes a tuple, psycopg's pyformat a dict.
    raw: Any = tuple(bound.values()) if db.dialect == "sqlite" else bound
    processors = compiled._bind_processors  # the UTC datetime conversion of the column type
    if db.dialect == "sqlite":
        raw = tuple(
            processors[key](value) if key in processors else value for key, value in bound.items()
        )

    def baseline() -> object:
        with db.engine.connect() as connection:
            return connection.exec_driver_sql(sql, raw).all()

    def service() -> object:
        with db.session() as session:
            return list_events(session, filters=f, after=after, limit=PAGE)

    params: dict[str, Any] = {"limit": PAGE}
    for key, value in (
        ("category", f.category),
        ("level", f.level),
        ("image", f.image_digest),
        ("cursor", after.encode() if after else None),
    ):
        if value is not None:
            params[key] = str(value)

    def http() -> object:
        answer = client.get("/api/v1/events", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    return {"baseline": baseline, "service": service, "http": http}


def _same_page(ways: dict[str, Callable[[], Any]]) -> None:
    """The three ways must read the same page, or the comparison means nothing."""
    page = ways["service"]()
    baseline_ids = [row.id for row in ways["baseline"]()][:PAGE]
    http_ids = [e["id"] for e in ways["http"]()["items"]]
    if not baseline_ids == http_ids == [e.id for e in page.items]:
        raise AssertionError("baseline, service and http read different pages")


def measure(backend: str, url: str, rows: int, samples: int, repeat: int, log: Any) -> list[Figure]:
    db = Database(url)
    figures: list[Figure] = []
    try:
        db.migrate()
        began = time.perf_counter()
        (_fill_sqlite if backend == "sqlite" else _fill_postgresql)(db, rows)
        log(f"{backend}: inserted {rows:,} events in {time.perf_counter() - began:.1f} s")
        with db.session() as session:
            token = issue_token(session, name="bench", role=Role.AUDITOR, now=START, actor=None)
        headers = {"Authorization": f"Bearer {token.secret}"}
        settings = Settings(environment="development", database_url=url)
        with TestClient(create_app(settings, clock=lambda: START)) as client:
            for name, filters in SCENARIOS.items():
                matching = _matching(db, filters, rows)
                log(f"{backend}: {name}: {matching:,} matching events")
                for page, after in (("first", None), ("deep", _deep_cursor(db, filters, matching))):
                    ways = _ways(db, client, headers, filters, after)
                    _same_page(ways)
                    for way, call in ways.items():
                        rounds = [_time(call, samples) for _ in range(repeat)]
                        figures.append(
                            Figure(
                                backend=backend,
                                scenario=name,
                                page=page,
                                way=way,
                                p50_ms=round(statistics.median(r[0] for r in rounds), 3),
                                p99_ms=round(statistics.median(r[1] for r in rounds), 3),
                                p50_samples=[round(r[0], 3) for r in rounds],
                            )
                        )
    finally:
        db.dispose()
    return figures


@contextlib.contextmanager
def _database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'events.sqlite'}"
        return
    reason = postgres.available()
    if reason is not None:
        raise SystemExit(f"events_bench: PostgreSQL unavailable: {reason}")
    cluster = postgres.PostgresCluster().start()
    try:
        yield cluster.url(cluster.create_database())
    finally:
        cluster.stop()


def render(figures: list[Figure]) -> str:
    lines = [
        f"{'backend':<11}{'listing':<18}{'page':<6}"
        + "".join(f"{w + ' p50/p99 ms':>24}" for w in ("baseline", "service", "http"))
    ]
    keyed = {(f.backend, f.scenario, f.page, f.way): f for f in figures}
    for backend, scenario, page in dict.fromkeys((f.backend, f.scenario, f.page) for f in figures):
        cells = []
        for way in ("baseline", "service", "http"):
            f = keyed[(backend, scenario, page, way)]
            cells.append(f"{f.p50_ms:>11.2f} / {f.p99_ms:<9.2f}")
        lines.append(f"{backend:<11}{scenario:<18}{page:<6}" + "".join(f"{c:>24}" for c in cells))
    lines.append(
        "(p50 of each round: "
        + "; ".join(
            f"{f.backend}/{f.scenario}/{f.page}/{f.way} {f.p50_samples}" for f in figures[:3]
        )
        + " ...; all samples in --json)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the audit event listing.")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per figure (median)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="events stored")
    parser.add_argument("--samples", type=int, default=100, help="calls per round")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], action="append")
    args = parser.parse_args(argv)
    log_lines: list[str] = []
    log = log_lines.append if args.json else (lambda line: print(line, flush=True))
    figures: list[Figure] = []
    for backend in args.only or ["sqlite", "postgresql"]:
        with (
            tempfile.TemporaryDirectory(prefix="tidegate-events-bench-") as tmp,
            _database(backend, Path(tmp)) as url,
        ):
            figures += measure(backend, url, args.rows, args.samples, max(args.repeat, 1), log)
    if args.json:
        print(
            json.dumps(
                {"rows": args.rows, "log": log_lines, "figures": [asdict(f) for f in figures]},
                indent=2,
            )
        )
    else:
        print(render(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
