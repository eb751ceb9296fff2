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


def _scans(session: Session) -> list[tuple[int, str | None, Analyzers, str | None]]:
    query = (
        select(ImageRow.id, ScanResultRow.db_snapshot, ScanResultRow.analyzers, ImageRow.reference)
        .join(ScanResultRow, ScanResultRow.id == ImageRow.latest_scan_id)
        .where(ImageRow.retired.is_(False))
        .order_by(ImageRow.id)
    )
    return [(i, snap, analyzers_key(an), ref) for i, snap, an, ref in session.execute(query)]


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
            images = [i for i, snap, _a, _r in _scans(session) if snap != snapshot]
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
    for image_id, _snap, used, reference in _scans(session):
        if reference is None or used == wanted:
            continue
        job = enqueue_scan(
            session,
            image_id=image_id,
            reference=reference,
            registry=None,
            now=now,
            reason="analyzers changed since the stored scan: re-scan",
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
        image_id
        for image_id, snap, used, _ref in _scans(session)
        if snap != snapshot and used == wanted
    ]
    summary = rematch_all(session, vulndb_path=vulndb_path, now=now, images=stale)
    return RescanSummary(
        snapshot=snapshot, rematched=summary.evaluated, changed=summary.changed, queued=queued
    )
