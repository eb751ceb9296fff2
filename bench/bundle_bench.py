"""Policy bundle benchmark: 100,000 registered images in an enforcer's bundle.

Figures, all from the same run:
- console side: building the group's bundle from the database (`services.bundle.build_group_bundle`
  on a migrated SQLite holding the images, their registries, repositories and tags) and from
  in-memory records (`build_image_index` + `build_bundle`), then `bundle_to_json`;
- the bundle's size (raw JSON and gzip, as it travels with `Content-Encoding: gzip`);
- enforcer side: `bundle_from_json` (what each new bundle costs an enforcer), and the latency of a
  decision with that bundle loaded: image lookup by its identities + `core.runtime.decide` over the
  default policy, three scoped policies and two services, p50/p99 over 1,000 decisions (a mix of
  images known by config digest, by name, disallowed, and unregistered);
- baseline: a plain dict lookup of the same 1,000 digests (full digest strings as keys), p50/p99,
  and the decision latency as a ratio to it.

Run: `.venv/bin/python bench/bundle_bench.py [--images N] [--decisions N] [--no-db] [--json]
[--repeat N]`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from sqlalchemy import insert  # noqa: E402

from tidegate.core.bundle import (  # noqa: E402
    EnforcerGroupInfo,
    ImageRecord,
    PolicyBundle,
    build_bundle,
    build_image_index,
    bundle_from_json,
    bundle_to_json,
)
from tidegate.core.policy import LabelRule, Mode  # noqa: E402
from tidegate.core.runtime import (  # noqa: E402
    ContainerRequest,
    ImageStateKind,
    Mount,
    RuntimeControls,
    RuntimePolicy,
    RuntimePolicyId,
    RuntimeScope,
    Service,
    ServiceRule,
    decide,
    default_runtime_policy,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REGISTRY = "registry.example.com"


def digest(kind: str, i: int) -> str:
    return "sha256:" + hashlib.sha256(f"{kind} {i}".encode()).hexdigest()


def _status(i: int) -> ImageStateKind:
    if i % 100 == 0:
        return ImageStateKind.RETIRED
    if i % 20 == 0:
        return ImageStateKind.REGISTERED_DISALLOWED
    return ImageStateKind.REGISTERED_APPROVED


def _repository(i: int) -> str:
    return f"team-{i % 100}/app-{i // 100}"


def records(n: int) -> list[ImageRecord]:
    return [
        ImageRecord(
            status=_status(i),
            manifest_digest=digest("manifest", i),
            config_digest=digest("config", i),
            names=(f"{REGISTRY}/{_repository(i)}:1.{i % 10}",),
            reason="disallowed by strict: severity"
            if _status(i) is ImageStateKind.REGISTERED_DISALLOWED
            else "",
        )
        for i in range(n)
    ]


def policies() -> list[RuntimePolicy]:
    def scoped(name: str, scope: RuntimeScope, **controls: Any) -> RuntimePolicy:
        return RuntimePolicy(
            id=RuntimePolicyId(name),
            name=name,
            mode=Mode.ENFORCE,
            scope=scope,
            controls=RuntimeControls(**controls),
        )

    return [
        default_runtime_policy(),
        scoped(
            "images",
            RuntimeScope(enforcer_groups=("prod",)),
            block_unregistered=True,
            block_disallowed=True,
        ),
        scoped(
            "shop",
            RuntimeScope(namespaces=("shop",)),
            block_root=True,
            blocked_capabilities=("ALL",),
        ),
        scoped(
            "payments",
            RuntimeScope(services=("payments",)),
            block_privileged=True,
            require_no_new_privileges=True,
        ),
    ]


SERVICES = (
    Service("payments", 10, (ServiceRule(labels=(LabelRule("app", "pay*"),)),)),
    Service("shop", 50, (ServiceRule(namespaces=("shop",)),)),
)


def requests(n: int, images: int) -> list[ContainerRequest]:
    out = []
    for k in range(n):
        i = (k * 7919) % images
        by_name = k % 4 == 1
        unknown = k % 10 == 9
        out.append(
            ContainerRequest(
                container_id=f"{k:064x}",
                name=f"c{k}",
                image_ref=f"{REGISTRY}/{_repository(i)}:1.{i % 10}"
                if not unknown
                else f"{REGISTRY}/x/y:{k}",
                image_id=None
                if by_name
                else (digest("config", i) if not unknown else digest("other", k)),
                host="node-1",
                enforcer_group="prod",
                namespace="shop" if k % 2 else "tools",
                labels=(("app", "payments" if k % 3 == 0 else "web"),),
                mounts=(Mount("/srv/data", "/data"), Mount("proc", "/proc", "proc")),
                user_uid=1000,
                no_new_privileges=True,
            )
        )
    return out


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 / 1000, p99 / 1000


def decision_latency(bundle: PolicyBundle, reqs: list[ContainerRequest]) -> tuple[list[int], int]:
    samples, denied = [], 0
    for request in reqs:
        start = time.perf_counter_ns()
        state = bundle.image_state(image_id=request.image_id, image_ref=request.image_ref)
        decision = decide(
            request,
            bundle.policies,
            state,
            group_mode=bundle.group.mode,
            now=NOW,
            services=bundle.services,
        )
        samples.append(time.perf_counter_ns() - start)
        denied += not decision.allowed
    return samples, denied


def baseline_latency(table: dict[str, ImageStateKind], reqs: list[ContainerRequest]) -> list[int]:
    samples = []
    for request in reqs:
        key = request.image_id or request.image_ref
        start = time.perf_counter_ns()
        table.get(key)
        samples.append(time.perf_counter_ns() - start)
    return samples


def _db_build(recs: list[ImageRecord]) -> float:
    """Seconds of `build_group_bundle` on a migrated SQLite holding the images."""
    from tidegate.services.bundle import build_group_bundle
    from tidegate.services.enforcers import create_group
    from tidegate.store.db import Database
    from tidegate.store.inventory import ImageRow, ImageTagRow, RegistryRow, RepositoryRow

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.sqlite")
        try:
            db.migrate()
            with db.session() as session:
                session.execute(insert(RegistryRow), [{"id": 1, "host": REGISTRY, "created": NOW}])
                repos = sorted({_repository(i) for i in range(len(recs))})
                repo_ids = {name: n + 1 for n, name in enumerate(repos)}
                session.execute(
                    insert(RepositoryRow),
                    [
                        {"id": rid, "registry_id": 1, "name": name, "created": NOW}
                        for name, rid in repo_ids.items()
                    ],
                )
                session.execute(
                    insert(ImageRow),
                    [
                        {
                            "id": i + 1,
                            "digest": r.manifest_digest,
                            "manifest_digest": r.manifest_digest,
                            "config_digest": r.config_digest,
                            "registry_id": 1,
                            "repository_id": repo_ids[_repository(i)],
                            "labels": {},
                            "first_seen": NOW,
                            "last_seen": NOW,
                            "status": "disallowed"
                            if r.status is ImageStateKind.REGISTERED_DISALLOWED
                            else "approved",
                            "status_reason": r.reason,
                            "retired": r.status is ImageStateKind.RETIRED,
                        }
                        for i, r in enumerate(recs)
                    ],
                )
                session.execute(
                    insert(ImageTagRow),
                    [
                        {
                            "image_id": i + 1,
                            "repository_id": repo_ids[_repository(i)],
                            "tag": f"1.{i % 10}",
                            "first_seen": NOW,
                            "last_seen": NOW,
                        }
                        for i in range(len(recs))
                    ],
                )
                group = create_group(session, settings={"name": "prod"}, actor="bench", now=NOW).row
            with db.session() as session:
                seconds, bundle = _timed(lambda: build_group_bundle(session, group=group, now=NOW))
            if len(bundle.images) != 2 * len(recs):
                raise SystemExit(
                    f"bundle from the DB holds {len(bundle.images)} keys, expected {2 * len(recs)}"
                )
            return seconds
        finally:
            db.dispose()


@dataclass
class Round:
    figures: dict[str, float]


def one_round(
    recs: list[ImageRecord], reqs: list[ContainerRequest], with_db: bool
) -> dict[str, float]:
    index_s, index = _timed(lambda: build_image_index(recs))
    bundle_s, bundle = _timed(
        lambda: build_bundle(
            group=EnforcerGroupInfo("prod", Mode.ENFORCE),
            policies=policies(),
            services=SERVICES,
            images=index,
            now=NOW,
        )
    )
    json_s, data = _timed(lambda: bundle_to_json(bundle))
    parse_s, loaded = _timed(lambda: bundle_from_json(data))
    table = {}
    for r in recs:
        for d in (r.manifest_digest, r.config_digest):
            if d:
                table[d] = r.status
        for name in r.names:
            table[name] = r.status
    decisions, denied = decision_latency(loaded, reqs)
    base = baseline_latency(table, reqs)
    d50, d99 = _percentiles(decisions)
    b50, b99 = _percentiles(base)
    figures = {
        "images": len(recs),
        "bundle_keys": len(loaded.images),
        "index_build_s": index_s,
        "bundle_build_s": index_s + bundle_s,
        "bundle_to_json_s": json_s,
        "bundle_bytes": len(data),
        "bundle_gzip_bytes": len(gzip.compress(data, 6)),
        "bundle_from_json_s": parse_s,
        "decide_p50_us": d50,
        "decide_p99_us": d99,
        "baseline_p50_us": b50,
        "baseline_p99_us": b99,
        "ratio_p50": d50 / b50 if b50 else float("inf"),
        "ratio_p99": d99 / b99 if b99 else float("inf"),
        "decisions": len(reqs),
        "denied": denied,
    }
    if with_db:
        figures["db_bundle_build_s"] = _db_build(recs)
    return figures


LABELS = {
    "bundle_build_s": ("bundle build, in memory (index + version hash)", "s"),
    "db_bundle_build_s": ("bundle build from SQLite (services.bundle)", "s"),
    "bundle_to_json_s": ("bundle_to_json", "s"),
    "bundle_bytes": ("bundle size, JSON", "bytes"),
    "bundle_gzip_bytes": ("bundle size, gzip", "bytes"),
    "bundle_from_json_s": ("bundle_from_json (enforcer load)", "s"),
    "decide_p50_us": ("decision p50 (lookup + decide)", "µs"),
    "decide_p99_us": ("decision p99 (lookup + decide)", "µs"),
    "baseline_p50_us": ("baseline p50 (dict lookup)", "µs"),
    "baseline_p99_us": ("baseline p99 (dict lookup)", "µs"),
    "ratio_p50": ("decision / baseline, p50", "x"),
    "ratio_p99": ("decision / baseline, p99", "x"),
}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bundle_bench")
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-db", action="store_true", help="skip the build from SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(list(argv))
    recs = records(args.images)
    reqs = requests(args.decisions, args.images)
    rounds = [one_round(recs, reqs, not args.no_db) for _ in range(max(1, args.repeat))]
    keys = list(rounds[0])
    result: dict[str, Any] = {
        key: {
            "median": statistics.median(r[key] for r in rounds),
            "samples": [r[key] for r in rounds],
        }
        for key in keys
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"bundle benchmark: {args.images:,} images"
        f" ({int(result['bundle_keys']['median']):,} digest keys), "
        f"{args.decisions:,} decisions ({int(result['denied']['median'])} denied),"
        f" {len(rounds)} rounds"
    )
    for key, (label, unit) in LABELS.items():
        if key not in result:
            continue
        figure = result[key]
        samples = ", ".join(f"{s:.4g}" for s in figure["samples"])
        print(f"  {label:<48} {figure['median']:>14.4g} {unit:<5}  [{samples}]")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
