"""Re-scans without pulling: re-match stored packages after a vulnerability DB update, and queue a
real re-scan (a pull) only for images whose stored scan was made by other analyzers.

A stored scan records the DB snapshot it was matched against and the analyzers (name, version)
that read the image. When the console's DB snapshot changes, every scan matched against another
snapshot is re-matched from its stored packages (no registry is contacted) and the image
re-evaluated, through `services.assurance.reevaluate(transform=...)`. When the analyzers changed
(a new Tidegate version reads more), the stored packages are not the ones a scan would find now:
those images get a scan job (a pull), if they have a reference to pull.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.matching.matcher import MATCHER
from tidegate.core.models import ScanResult
from tidegate.services.assurance import ReevaluationSummary, reevaluate
from tidegate.services.jobs import DEFAULT_MAX_ATTEMPTS, enqueue_scan
from tidegate.store.inventory import ImageRow, ScanResultRow

__all__ = [
    "RescanSummary",
    "analyzers_key",
    "current_analyzers",
    "queue_analyzer_rescans",
    "rematch",
    "rematch_all",
    "run_rescans",
    "vulndb_snapshot",
]


@dataclass(frozen=True, slots=True)
class RescanSummary:
    snapshot: str | None
    """The console's DB snapshot the stored scans were re-matched against (None: no DB)."""
    rematched: int = 0
    changed: tuple[int, ...] = ()
    """Images whose status changed by the re-match."""
    queued: tuple[int, ...] = ()
    """Ids of the scan jobs queued because the analyzers changed."""


_snapshots: dict[Path, tuple[tuple[int, int], str | None]] = {}
_snapshots_lock = threading.Lock()


def vulndb_snapshot(path: Path) -> str | None:
    """The snapshot id of the DB at `path` (None when there is none); cached until the file
    changes, since workers ask on every claim."""
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (stat.st_mtime_ns, stat.st_size)
    with _snapshots_lock:
        cached = _snapshots.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
    from tidegate.core.errors import VulnDBError
    from tidegate.vulndb import VulnStore

    try:
        with VulnStore.open(path) as store:
            snapshot: str | None = store.snapshot_id() or None
    except VulnDBError:
        return None
    with _snapshots_lock:
        _snapshots[path] = (key, snapshot)
    return snapshot


Analyzers = tuple[tuple[str, str], ...]
"""Sorted (name, version) pairs, versions as text (stored scans keep them as JSON)."""


def analyzers_key(pairs: object) -> Analyzers:
    """Stored or current analyzers in one comparable form."""
    items = pairs if isinstance(pairs, list | tuple) else []
    return tuple(sorted((str(p[0]), str(p[1])) for p in items if len(p) == 2))


def current_analyzers() -> Analyzers:
    """The analyzers a scan runs now."""
    from tidegate.analyzers import default_analyzers

    return analyzers_key([(a.name, a.version) for a in default_analyzers()])


def rematch(result: ScanResult, store: object, snapshot: str) -> ScanResult:
    """`result` matched afresh against `store`: the previous match's findings and unknowns go."""
    from tidegate.scan.match import match_result

    catalogue = result.catalogue
    kept = tuple(u for u in catalogue.unknowns if u.analyzer != MATCHER)
    bare = replace(result, catalogue=replace(catalogue, unknowns=kept), findings=())
    return match_result(bare, store, snapshot)  # type: ignore[arg-type]


class _Scan(NamedTuple):
    image_id: int
    snapshot: str | None
    analyzers: Analyzers
    reference: str | None
    digest: str | None


def _scans(session: Session) -> list[_Scan]:
    query = (
        select(
            ImageRow.id,
            ScanResultRow.db_snapshot,
            ScanResultRow.analyzers,
            ImageRow.reference,
            ImageRow.digest,
        )
        .join(ScanResultRow, ScanResultRow.id == ImageRow.latest_scan_id)
        .where(ImageRow.retired.is_(False))
        .order_by(ImageRow.id)
    )
    return [
        _Scan(i, snap, analyzers_key(an), ref, digest)
        for i, snap, an, ref, digest in session.execute(query)
    ]


def rematch_all(
    session: Session,
    *,
    vulndb_path: Path,
    now: datetime,
    images: list[int] | None = None,
) -> ReevaluationSummary:
    """Re-match the stored scans of `images` (None: those matched against another snapshot)
    against the DB at `vulndb_path`, and re-evaluate them. Nothing is pulled."""
    from tidegate.vulndb import VulnStore

    with VulnStore.open(vulndb_path) as store:
        snapshot = store.snapshot_id()
        if images is None:
            images = [s.image_id for s in _scans(session) if s.snapshot != snapshot]
        if not images:
            return ReevaluationSummary()
        return reevaluate(
            session,
            now=now,
            images=images,
            reason=f"vulnerability DB updated: re-matched against snapshot {snapshot}",
            transform=lambda result: rematch(result, store, snapshot),
        )


def queue_analyzer_rescans(
    session: Session,
    *,
    now: datetime,
    analyzers: Analyzers | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> tuple[int, ...]:
    """Queue a scan job (a pull) for each image whose stored scan used other analyzers."""
    wanted = analyzers if analyzers is not None else current_analyzers()
    queued = []
    for scan in _scans(session):
        if scan.reference is None or scan.analyzers == wanted:
            continue
        job = enqueue_scan(
            session,
            image_id=scan.image_id,
            reference=scan.reference.removeprefix("docker://"),
            registry=None,
            now=now,
            reason="analyzers changed since the stored scan: re-scan",
            digest=scan.digest,
            max_attempts=max_attempts,
        )
        if job is not None:
            queued.append(job)
    return tuple(queued)


def run_rescans(
    session: Session,
    *,
    vulndb_path: Path,
    now: datetime,
    analyzers: Analyzers | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> RescanSummary:
    """One periodic pass: re-pull the images scanned by other analyzers, re-match the rest."""
    queued = queue_analyzer_rescans(
        session, now=now, analyzers=analyzers, max_attempts=max_attempts
    )
    snapshot = vulndb_snapshot(vulndb_path)
    if snapshot is None:
        return RescanSummary(snapshot=None, queued=queued)
    wanted = analyzers if analyzers is not None else current_analyzers()
    stale = [
        s.image_id for s in _scans(session) if s.snapshot != snapshot and s.analyzers == wanted
    ]
    summary = rematch_all(session, vulndb_path=vulndb_path, now=now, images=stale)
    return RescanSummary(
        snapshot=snapshot, rematched=summary.evaluated, changed=summary.changed, queued=queued
    )
