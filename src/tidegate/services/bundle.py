"""The policy bundle of an enforcer group, built from the console's state, and a short-lived cache.

A bundle holds the group's settings, the runtime policies that can apply to its containers (the
default one and those not scoped to other groups), every service, and an index of every image
with a digest (manifest and config digests, current names, approved / disallowed / retired, and
the executables of its latest scan with their sha256: the inventory drift prevention compares).
Enforcers poll it every few seconds with the version as ETag; the cache keeps one replica from
rebuilding it for each poll, and rebuilds it as soon as the group's settings or anything it is
built from changes, so a mode switch or a policy change reaches the enforcers at their next poll.

Image profiling rides along: the applied runtime profiles (by image repository) that the runtime
monitor checks execs against, and the active profiling sessions whose containers enforcers
record; a profile change, a mode switch, a session started or stopped changes the cache key
(`services.profiles.profiles_fingerprint`), so it too reaches enforcers at their next poll.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.bundle import (
    EnforcerGroupInfo,
    ImageRecord,
    PolicyBundle,
    ProfilingTarget,
    build_bundle,
    build_image_index,
    bundle_to_json,
)
from tidegate.core.drift import ImageProfile
from tidegate.core.events import EventCategory
from tidegate.core.policy import ImageStatus
from tidegate.core.profile import to_image_profile
from tidegate.core.runtime import ImageStateKind, RuntimePolicy
from tidegate.services.enforcers import group_info
from tidegate.services.profiles import active_sessions, profiles_fingerprint, profiles_for_bundle
from tidegate.services.runtime import active_policies, all_services
from tidegate.store.event_tables import EventRow
from tidegate.store.inventory import (
    ImageRow,
    ImageTagRow,
    RegistryRow,
    RepositoryRow,
    ScanResultRow,
)
from tidegate.store.runtime import EnforcerGroupRow

__all__ = [
    "BUNDLE_MAX_AGE",
    "BuiltBundle",
    "BundleCache",
    "build_group_bundle",
    "fingerprint",
    "image_records",
    "profiling_targets",
    "repository_profiles",
]

BUNDLE_MAX_AGE = timedelta(seconds=30)
"""The longest one replica serves a built bundle without rebuilding it."""


def _state_of(row_status: str, retired: bool) -> ImageStateKind:
    if retired:
        return ImageStateKind.RETIRED
    if row_status == ImageStatus.DISALLOWED:
        return ImageStateKind.REGISTERED_DISALLOWED
    return ImageStateKind.REGISTERED_APPROVED


def _names(session: Session) -> dict[int, list[str]]:
    query = (
        select(ImageTagRow.image_id, RegistryRow.host, RepositoryRow.name, ImageTagRow.tag)
        .join(RepositoryRow, ImageTagRow.repository_id == RepositoryRow.id)
        .join(RegistryRow, RepositoryRow.registry_id == RegistryRow.id)
    )
    names: dict[int, list[str]] = defaultdict(list)
    for image_id, host, repository, tag in session.execute(query):
        names[image_id].append(f"{host}/{repository}:{tag}")
    return names


def _executables(stored: Any) -> dict[str, str | None]:
    """Path -> sha256 from the `executables` of a stored scan document (null: written without
    the inventory; entries without a string path are skipped, a non-string hash is unknown)."""
    if not isinstance(stored, list):
        return {}
    found: dict[str, str | None] = {}
    for entry in stored:
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            sha = entry.get("sha256")
            found[entry["path"]] = sha if isinstance(sha, str) else None
    return found


def image_records(session: Session) -> Iterator[ImageRecord]:
    """Every image with a digest, as the bundle's image index takes it (with the executables of
    its latest scan; only that part of the stored document is read)."""
    names = _names(session)
    query = (
        select(
            ImageRow.id,
            ImageRow.manifest_digest,
            ImageRow.config_digest,
            ImageRow.digest,
            ImageRow.status,
            ImageRow.status_reason,
            ImageRow.retired,
            ScanResultRow.document["executables"],
        )
        .outerjoin(ScanResultRow, ScanResultRow.id == ImageRow.latest_scan_id)
        .where(ImageRow.digest.is_not(None))
    )
    rows = session.execute(query)
    for image_id, manifest, config, digest, status, reason, retired, executables in rows:
        yield ImageRecord(
            status=_state_of(status, bool(retired)),
            manifest_digest=manifest or digest,
            config_digest=config,
            names=tuple(names.get(image_id, ())),
            reason=reason or "",
            executables=_executables(executables),
        )


def _for_group(policy: RuntimePolicy, group: str) -> bool:
    groups = policy.scope.enforcer_groups
    return policy.enabled and (
        policy.is_default or not groups or any(fnmatchcase(group, g) for g in groups)
    )


def repository_profiles(session: Session) -> dict[str, ImageProfile]:
    """Image repository -> the runtime profile applied to it (one per repository; should two
    ever name the same repository, the first by name wins, so the bundle stays the same)."""
    found: dict[str, ImageProfile] = {}
    for profile in sorted(profiles_for_bundle(session), key=lambda p: p.name):
        found.setdefault(profile.repository, to_image_profile(profile))
    return found


def profiling_targets(session: Session) -> tuple[ProfilingTarget, ...]:
    """The active profiling sessions, as enforcers record for them."""
    return tuple(
        ProfilingTarget(id=s.id, profile=s.profile, repository=s.repository, digest=s.digest)
        for s in active_sessions(session)
    )


def build_group_bundle(session: Session, *, group: EnforcerGroupRow, now: datetime) -> PolicyBundle:
    policies = [p for p in active_policies(session) if _for_group(p, group.name)]
    return build_bundle(
        group=group_info(group),
        policies=policies,
        services=all_services(session),
        images=build_image_index(image_records(session)),
        now=now,
        profiles=repository_profiles(session),
        profiling=profiling_targets(session),
    )


_WATCHED = (EventCategory.IMAGE, EventCategory.POLICY, EventCategory.REGISTRY)
"""Every change a bundle depends on (image registered, status changed, retired; runtime policy or
service changed) records an event of one of these categories in the same transaction."""

Fingerprint = tuple[EnforcerGroupInfo, tuple[tuple[datetime, int] | None, ...], str]


def fingerprint(session: Session, *, group: EnforcerGroupRow) -> Fingerprint:
    """What a built bundle is valid for: the group's settings, the newest event of each watched
    category (one index probe each, on the (category, ts, id) index), and the profiles and
    active profiling sessions (`profiles_fingerprint`)."""
    newest: list[tuple[datetime, int] | None] = []
    for category in _WATCHED:
        query = (
            select(EventRow.ts, EventRow.id)
            .where(EventRow.category == str(category))
            .order_by(EventRow.ts.desc(), EventRow.id.desc())
            .limit(1)
        )
        row = session.execute(query).first()
        newest.append((row[0], row[1]) if row is not None else None)
    return group_info(group), tuple(newest), profiles_fingerprint(session)


@dataclass(frozen=True, slots=True)
class BuiltBundle:
    version: str
    body: bytes
    built_at: datetime
    fingerprint: Fingerprint


class BundleCache:
    """Built bundles per group; one per console process.

    A poll costs a few index probes while nothing changed: the bundle (a second of work for
    100,000 images) is rebuilt when the group's settings or a watched category changed, and at
    least every `max_age` as a safety net for changes made without an event.
    """

    def __init__(self, max_age: timedelta = BUNDLE_MAX_AGE) -> None:
        self.max_age = max_age
        self._built: dict[int, BuiltBundle] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, *, group: EnforcerGroupRow, now: datetime) -> BuiltBundle:
        current = fingerprint(session, group=group)
        with self._lock:
            cached = self._built.get(group.id)
        if (
            cached is not None
            and cached.fingerprint == current
            and timedelta(0) <= now - cached.built_at < self.max_age
        ):
            return cached
        bundle = build_group_bundle(session, group=group, now=now)
        built = BuiltBundle(
            version=bundle.version, body=bundle_to_json(bundle), built_at=now, fingerprint=current
        )
        with self._lock:
            self._built[group.id] = built
        return built

    def clear(self) -> None:
        with self._lock:
            self._built.clear()
