"""Console re-assurance benchmark: 10,000 images x 10 policies re-evaluated after a DB change,
on SQLite and on PostgreSQL (a throwaway cluster started from /usr/lib/postgresql/15/bin).

Each image has a realistic stored scan (a Debian catalogue of 40 packages, two OpenSSL findings);
the 10 policies mix scopes and controls. The figure is `services.assurance.reevaluate` over every
image (read documents, rebuild subjects, evaluate, write verdicts and status changes, record
events) after a policy change that flips half the images' statuses, reported as total seconds and
as milliseconds per image. Target: under 30 s on each database.

Run: `.venv/bin/python bench/console_bench.py [--images N] [--json] [--repeat N] [--check]
[--only sqlite|postgresql]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "console"), str(ROOT / "src")]

from inventory_data import scan_result  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from helpers import postgres  # noqa: E402
from tidegate.services import policies as policy_service  # noqa: E402
from tidegate.services.assurance import reevaluate  # noqa: E402
from tidegate.services.serialize import document_from_result  # noqa: E402
from tidegate.store.db import Database  # noqa: E402
from tidegate.store.inventory import ImageRow, ScanResultRow  # noqa: E402

TARGET_S = 30.0
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _policies() -> list[dict[str, Any]]:
    out = []
    for i in range(10):
        controls: dict[str, Any] = {"severity": {"max_severity": ["high", "medium"][i % 2]}}
        if i % 3 == 0:
            controls["package_denylist"] = [{"name": "pkg7", "versions": "<2.0", "type": "deb"}]
        if i % 4 == 0:
            controls["block_root"] = True
        out.append(
            {
                "name": f"policy-{i}",
                "description": "",
                "mode": "audit",
                "enabled": True,
                "enforce_after": None,
                "scope": {
                    "registries": [],
                    "repositories": [f"team-{i % 5}/*"] if 0 < i < 9 else [],
                    "labels": [],
                },
                "controls": controls,
            }
        )
    return out


def _populate(db: Database, images: int) -> None:
    with db.session() as session:
        for doc in _policies():
            policy_service.insert_policy(session, document=doc, actor="bench", now=NOW)
        base = document_from_result(scan_result(0, packages=40))
        rows = []
        for n in range(1, images + 1):
            d = f"sha256:{n:064x}"
            rows.append(
                {
                    "id": n,
                    "digest": d,
                    "manifest_digest": d,
                    "config_digest": None,
                    "reference": None,
                    "labels": {},
                    "first_seen": NOW,
                    "last_seen": NOW,
                    "status": "unscanned",
                    "status_reason": "",
                    "retired": False,
                    "latest_scan_id": n,
                }
            )
        session.execute(insert(ImageRow), rows)
        session.execute(
            insert(ScanResultRow),
            [
                {
                    "id": n,
                    "image_id": n,
                    "document": base,
                    "db_snapshot": "s",
                    "analyzers": [],
                    "scanned_at": NOW,
                    "received": NOW,
                }
                for n in range(1, images + 1)
            ],
        )
        reevaluate(session, now=NOW, reason="initial")


def _round(db: Database, flip: int) -> tuple[float, int]:
    """Switch the last (global) policy's mode: `replace_policy` re-evaluates every image."""
    doc = _policies()[-1]
    doc["mode"] = "enforce" if flip % 2 == 0 else "audit"
    with db.session() as session:
        before = {i.id: i.status for i in session.query(ImageRow)}
    started = time.perf_counter()
    with db.session() as session:
        policy_service.replace_policy(
            session, key=doc["name"], document=doc, actor="bench", now=NOW + timedelta(seconds=flip)
        )
    seconds = time.perf_counter() - started
    with db.session() as session:
        changed = sum(1 for i in session.query(ImageRow) if before[i.id] != i.status)
    return seconds, changed


def _measure(url: str, images: int, repeat: int) -> dict[str, Any]:
    db = Database(url)
    try:
        db.migrate()
        _populate(db, images)
        samples, changed = [], []
        for i in range(repeat):
            seconds, n = _round(db, i)
            samples.append(seconds)
            changed.append(n)
    finally:
        db.dispose()
    median = statistics.median(samples)
    return {
        "images": images,
        "policies": 10,
        "seconds": median,
        "ms_per_image": 1000 * median / images,
        "samples": samples,
        "status_changes": changed,
        "target_s": TARGET_S,
        "ok": median < TARGET_S,
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="console_bench")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tidegate-console-bench-") as tmp:
        if args.only in (None, "sqlite"):
            results["sqlite"] = _measure(f"sqlite:///{tmp}/bench.sqlite", args.images, args.repeat)
        if args.only in (None, "postgresql"):
            reason = postgres.available()
            if reason is not None:
                results["postgresql"] = {"skipped": reason}
            else:
                cluster = postgres.PostgresCluster().start()
                try:
                    url = cluster.url(cluster.create_database())
                    results["postgresql"] = _measure(url, args.images, args.repeat)
                finally:
                    cluster.stop()
    if args.json:
        print(json.dumps({"console": results}, indent=2))
    else:
        for name, r in results.items():
            if "skipped" in r:
                print(f"{name:11} skipped: {r['skipped']}")
                continue
            samples = ", ".join(f"{s:.2f}" for s in r["samples"])
            print(
                f"{name:11} re-evaluate {r['images']} images x {r['policies']} policies: "
                f"{r['seconds']:.2f} s ({r['ms_per_image']:.2f} ms/image; samples {samples}; "
                f"status changes {r['status_changes']}) target < {TARGET_S:.0f} s"
            )
    failed = any(not r.get("ok", True) for r in results.values())
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
