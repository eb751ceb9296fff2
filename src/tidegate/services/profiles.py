"""Image profiling: sessions, their observations, the profiles they produce, and readiness.

A profiling session learns one profile (by name) for one image repository. It is started by
the API (an image reference), by the automatic profiler (the API with a duration: the scheduler
stops it when due), or by an enforcer that saw a container started with `TIDEGATE_PROFILE=<name>`
(later such containers join the active session; it stops when its last container exited, or by
the API). At most one session per profile is active, even against concurrent starts (a unique
column set only while active). While it is active, enforcers upload observations in batches,
each stored once by its idempotency key.

Stopping builds the profile (`core.profile.merge`: append adds to the existing profile, otherwise
the content is replaced) and applies it in audit mode. A profile can then be edited, switched to
enforce, exported and deleted; every change bumps its version, is kept in its history and is an
audit event. Readiness lists the DETECT events of the monitor against the profile since it was
applied or last switched mode: what the tests did not exercise.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tidegate.core.errors import ReferenceError_, TidegateError, UsageError
from tidegate.core.events import Event, EventCategory, EventLevel
from tidegate.core.policy import Mode
from tidegate.core.profile import (
    Observation,
    ProfilingSession,
    RuntimeProfile,
    SessionOrigin,
    SessionState,
    check_profile_name,
    merge,
    observation_from_json,
    observation_to_json,
    profile_changes,
    profile_from_json,
    profile_to_json,
    repository_of,
    with_content,
)
from tidegate.image.reference import Transport, parse_reference
from tidegate.services.events import record_event, to_event
from tidegate.services.images import find_image
from tidegate.store.db import ConflictError, Database, NotFoundError
from tidegate.store.event_tables import EventRow
from tidegate.store.profiles import (
    ProfileObservationRow,
    ProfilingContainerRow,
    ProfilingSessionRow,
    RuntimeProfileRow,
    RuntimeProfileVersionRow,
)

__all__ = [
    "MAX_DURATION",
    "ExecutableReadiness",
    "ObservationBatchResult",
    "ObservationIn",
    "ProfileChange",
    "Readiness",
    "StopResult",
    "active_sessions",
    "container_exited",
    "delete_profile",
    "get_profile",
    "get_session",
    "join_env_session",
    "list_profiles",
    "list_sessions",
    "profile_history",
    "profiles_fingerprint",
    "profiles_for_bundle",
    "put_profile",
    "readiness",
    "record_observations",
    "set_mode",
    "start_session",
    "stop_due_sessions",
    "stop_session",
]

MAX_DURATION = timedelta(days=30)
MIN_DURATION = timedelta(seconds=1)
PROFILER_ACTOR = "profiler"
PROFILE_CONTROL = "profile"
"""The control of the monitor's events against a profile (`core.drift.ExecControl.PROFILE`)."""
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ObservationIn:
    """One uploaded observation with its envelope."""

    key: str
    session_id: str
    observation: Observation


@dataclass(frozen=True, slots=True)
class ObservationBatchResult:
    accepted: tuple[str, ...]
    duplicates: tuple[str, ...]
    """Keys already stored: ignored."""
    ignored: tuple[str, ...]
    """Keys of a session that is no longer active: dropped (the profile is already built)."""


@dataclass(frozen=True, slots=True)
class StopResult:
    session: ProfilingSession
    profile: RuntimeProfile
    observations: int


@dataclass(frozen=True, slots=True)
class ProfileChange:
    profile: RuntimeProfile
    created: bool
    changed: bool


@dataclass(frozen=True, slots=True)
class ExecutableReadiness:
    path: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class Readiness:
    profile: RuntimeProfile
    since: datetime
    """Applied or last switched mode: events before are about another profile."""
    total: int
    executables: tuple[ExecutableReadiness, ...]
    """By executable path, the most frequent first."""
    latest: tuple[Event, ...]
    sessions: tuple[ProfilingSession, ...]
    """The sessions the current profile was learned from, newest first."""


# --- rows <-> domain ---------------------------------------------------------------------------


def _profile(row: RuntimeProfileRow) -> RuntimeProfile:
    document = {
        **row.document,
        "name": row.name,
        "repository": row.repository,
        "mode": row.mode,
        "version": row.version,
        "source": row.source,
        "applied_at": row.applied_at.isoformat(),
        "updated_at": row.updated.isoformat(),
    }
    return profile_from_json(document, f"stored profile {row.name!r}")


def _content(profile: RuntimeProfile) -> dict[str, Any]:
    stored = profile_to_json(profile)
    return {
        k: stored[k] for k in ("executables", "volumes", "listeners", "outbound", "learned_from")
    }


def _containers(session: Session, ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for start in range(0, len(ids), _CHUNK):
        query = (
            select(ProfilingContainerRow.session_id, ProfilingContainerRow.container_id)
            .where(ProfilingContainerRow.session_id.in_(ids[start : start + _CHUNK]))
            .order_by(ProfilingContainerRow.id)
        )
        for session_id, container_id in session.execute(query):
            found[session_id].append(container_id)
    return found


def _session(row: ProfilingSessionRow, containers: Iterable[str]) -> ProfilingSession:
    return ProfilingSession(
        id=row.id,
        profile=row.profile_name,
        repository=row.repository,
        digest=row.digest,
        append=row.append,
        origin=SessionOrigin(row.origin),
        started_at=row.started_at,
        started_by=row.started_by,
        ends_at=row.ends_at,
        state=SessionState(row.state),
        containers=tuple(containers),
        stopped_at=row.stopped_at,
        stopped_by=row.stopped_by,
    )


def _sessions(session: Session, rows: Sequence[ProfilingSessionRow]) -> list[ProfilingSession]:
    containers = _containers(session, [r.id for r in rows])
    return [_session(r, containers.get(r.id, ())) for r in rows]


def _event(
    session: Session,
    *,
    action: str,
    message: str,
    actor: str | None,
    now: datetime,
    profile: str,
    level: EventLevel = EventLevel.INFO,
    data: dict[str, Any] | None = None,
) -> None:
    record_event(
        session,
        category=EventCategory.RUNTIME,
        level=level,
        action=action,
        message=message,
        now=now,
        actor=actor,
        policy=profile,
        data={"profile": profile, **(data or {})},
    )


# --- profiles ----------------------------------------------------------------------------------


def _profile_row(session: Session, name: str) -> RuntimeProfileRow | None:
    return session.scalars(select(RuntimeProfileRow).where(RuntimeProfileRow.name == name)).first()


def _require_profile_row(session: Session, name: str) -> RuntimeProfileRow:
    row = _profile_row(session, name)
    if row is None:
        raise NotFoundError(f"runtime profile {name!r} not found")
    return row


def _check_repository_free(session: Session, name: str, repository: str) -> None:
    """One profile per repository: the monitor must know which one an image's execs meet."""
    query = select(RuntimeProfileRow.name).where(
        RuntimeProfileRow.repository == repository, RuntimeProfileRow.name != name
    )
    other = session.scalars(query).first()
    if other is not None:
        raise ConflictError(
            f"repository {repository!r} already has the runtime profile {other!r}: "
            f"profile it under that name (or delete that profile first)"
        )


def list_profiles(session: Session) -> list[RuntimeProfile]:
    rows = session.scalars(select(RuntimeProfileRow).order_by(RuntimeProfileRow.name))
    return [_profile(row) for row in rows]


def get_profile(session: Session, *, name: str) -> RuntimeProfile:
    return _profile(_require_profile_row(session, name))


def _history(
    session: Session, row: RuntimeProfileRow, change: str, actor: str | None, now: datetime
) -> None:
    session.add(
        RuntimeProfileVersionRow(
            profile_id=row.id,
            version=row.version,
            document=profile_to_json(_profile(row)),
            changed=now,
            changed_by=actor,
            change=change,
        )
    )


def _save(
    session: Session,
    profile: RuntimeProfile,
    *,
    change: str,
    actor: str | None,
    now: datetime,
    mode_switched: bool,
) -> RuntimeProfileRow:
    """Write `profile` (its version already set) over its row, or as a new row; history too."""
    _check_repository_free(session, profile.name, profile.repository)
    row = _profile_row(session, profile.name)
    if row is None:
        row = RuntimeProfileRow(name=profile.name, mode_since=now, applied_at=now)
        session.add(row)
    row.repository = profile.repository
    row.mode = profile.mode.value
    row.source = profile.source.value
    row.version = profile.version
    row.document = _content(profile)
    row.updated, row.updated_by = now, actor
    if change == "applied":
        row.applied_at = row.mode_since = now
    elif mode_switched:
        row.mode_since = now
    session.flush()
    _history(session, row, change, actor, now)
    return row


def put_profile(
    session: Session,
    *,
    name: str,
    edited: RuntimeProfile,
    mode: Mode | None,
    actor: str | None,
    now: datetime,
) -> ProfileChange:
    """Create or replace what profile `name` allows (and its mode, when given; a new profile
    starts in audit); the same content again is no change at all."""
    check_profile_name(name)
    row = _profile_row(session, name)
    if row is None:
        created = replace(
            edited,
            name=name,
            mode=Mode(mode or Mode.AUDIT),
            version=1,
            learned_from=(),
            applied_at=now,
        )
        saved = _save(session, created, change="created", actor=actor, now=now, mode_switched=True)
        profile = _profile(saved)
        _event(
            session,
            action="profile.created",
            message=f"runtime profile {name!r} for {profile.repository} written ({profile.mode})",
            actor=actor,
            now=now,
            profile=name,
            data={"version": profile.version, "repository": profile.repository},
        )
        return ProfileChange(profile, created=True, changed=True)
    before = _profile(row)
    after = replace(with_content(before, edited), mode=Mode(mode or before.mode))
    changes = profile_changes(before, after)
    if not changes:
        return ProfileChange(before, created=False, changed=False)
    after = replace(after, version=before.version + 1)
    switched = "mode" in changes
    profile = _profile(
        _save(session, after, change="updated", actor=actor, now=now, mode_switched=switched)
    )
    message = f"runtime profile {name!r} updated to v{profile.version}: {', '.join(changes)}"
    if switched:
        message += f" (mode {before.mode} -> {profile.mode})"
    _event(
        session,
        action="profile.updated",
        message=message,
        actor=actor,
        now=now,
        profile=name,
        level=EventLevel.WARNING if switched else EventLevel.INFO,
        data={"version": profile.version, "changed": changes},
    )
    return ProfileChange(profile, created=False, changed=True)


def set_mode(
    session: Session, *, name: str, mode: Mode, actor: str | None, now: datetime
) -> ProfileChange:
    """Switch a profile between audit and enforce (readiness restarts from the switch)."""
    row = _require_profile_row(session, name)
    before = _profile(row)
    if before.mode == mode:
        return ProfileChange(before, created=False, changed=False)
    after = replace(before, mode=Mode(mode), version=before.version + 1)
    profile = _profile(
        _save(session, after, change="mode", actor=actor, now=now, mode_switched=True)
    )
    _event(
        session,
        action="profile.mode_changed",
        message=f"runtime profile {name!r} switched from {before.mode} to {profile.mode}",
        actor=actor,
        now=now,
        profile=name,
        level=EventLevel.WARNING,
        data={"version": profile.version, "from": before.mode.value, "to": profile.mode.value},
    )
    return ProfileChange(profile, created=False, changed=True)


def delete_profile(session: Session, *, name: str, actor: str | None, now: datetime) -> None:
    row = _require_profile_row(session, name)
    _event(
        session,
        action="profile.deleted",
        message=f"runtime profile {name!r} for {row.repository} deleted (was v{row.version})",
        actor=actor,
        now=now,
        profile=name,
        data={"version": row.version, "document": profile_to_json(_profile(row))},
    )
    session.delete(row)
    session.flush()


def profile_history(session: Session, *, name: str) -> list[RuntimeProfileVersionRow]:
    row = _require_profile_row(session, name)
    query = (
        select(RuntimeProfileVersionRow)
        .where(RuntimeProfileVersionRow.profile_id == row.id)
        .order_by(RuntimeProfileVersionRow.version)
    )
    return list(session.scalars(query))


# --- sessions ----------------------------------------------------------------------------------


def _image(image: str) -> tuple[str, str | None]:
    """(repository, digest) of an image reference; the digest when it names one."""
    try:
        ref = parse_reference(image)
    except ReferenceError_ as exc:
        raise UsageError(f"image: {exc}") from exc
    if ref.transport is not Transport.DOCKER or ref.repository is None:
        raise UsageError(f"image {image!r}: give a registry image name (host/repository:tag)")
    return repository_of(ref.name), ref.digest


def _inventory_digest(session: Session, image: str) -> str | None:
    try:
        row = find_image(session, key=image)
    except NotFoundError:
        return None
    return row.manifest_digest or row.digest


def _active_row(session: Session, profile: str) -> ProfilingSessionRow | None:
    query = select(ProfilingSessionRow).where(ProfilingSessionRow.active_profile == profile)
    return session.scalars(query).first()


def _check_can_start(session: Session, profile: str, repository: str) -> None:
    active = _active_row(session, profile)
    if active is not None:
        raise ConflictError(
            f"runtime profile {profile!r} is already being learned (session {active.id}, "
            f"started {active.started_at.isoformat()} by {active.started_by}): stop it first"
        )
    query = select(ProfilingSessionRow).where(
        ProfilingSessionRow.repository == repository,
        ProfilingSessionRow.active_profile.is_not(None),
    )
    rival = session.scalars(query).first()
    if rival is not None:
        raise ConflictError(
            f"{repository} is already being profiled for runtime profile "
            f"{rival.profile_name!r} (session {rival.id}): one profile per repository"
        )
    existing = _profile_row(session, profile)
    if existing is not None and existing.repository != repository:
        raise ConflictError(
            f"runtime profile {profile!r} belongs to repository {existing.repository!r}, "
            f"not {repository!r}"
        )
    _check_repository_free(session, profile, repository)


def _insert_session(
    session: Session,
    *,
    profile: str,
    repository: str,
    digest: str | None,
    append: bool,
    origin: SessionOrigin,
    actor: str,
    now: datetime,
    ends_at: datetime | None,
) -> ProfilingSessionRow:
    check_profile_name(profile, "profile")
    _check_can_start(session, profile, repository)
    row = ProfilingSessionRow(
        id=uuid.uuid4().hex,
        profile_name=profile,
        active_profile=profile,
        repository=repository,
        digest=digest,
        append=append,
        origin=origin.value,
        state=SessionState.ACTIVE.value,
        started_at=now,
        started_by=actor,
        ends_at=ends_at,
    )
    session.add(row)
    session.flush()  # a concurrent start of the same profile fails here (unique active_profile)
    how = "appending to" if append else "replacing"
    until = f" until {ends_at.isoformat()}" if ends_at else ""
    _event(
        session,
        action="profiling.started",
        message=(
            f"profiling of {repository} started for runtime profile {profile!r} "
            f"({origin}, {how} it{until})"
        ),
        actor=actor,
        now=now,
        profile=profile,
        data={"session_id": row.id, "repository": repository, "digest": digest, "append": append},
    )
    return row


def start_session(
    session: Session,
    *,
    image: str,
    profile: str,
    append: bool,
    actor: str,
    now: datetime,
    duration: timedelta | None = None,
) -> ProfilingSession:
    """Start learning `profile` from the containers of `image`'s repository. With a duration it
    is the automatic profiler: the scheduler stops it when due."""
    if duration is not None and not MIN_DURATION <= duration <= MAX_DURATION:
        raise UsageError(
            f"duration: {duration} is not between 1 second and {MAX_DURATION.days} days"
        )
    repository, digest = _image(image)
    row = _insert_session(
        session,
        profile=profile,
        repository=repository,
        digest=digest or _inventory_digest(session, image),
        append=append,
        origin=SessionOrigin.API if duration is None else SessionOrigin.AUTOMATIC,
        actor=actor,
        now=now,
        ends_at=None if duration is None else now + duration,
    )
    return _session(row, ())


def get_session(session: Session, *, session_id: str) -> ProfilingSession:
    row = session.get(ProfilingSessionRow, session_id)
    if row is None:
        raise NotFoundError(f"profiling session {session_id!r} not found")
    return _sessions(session, [row])[0]


def list_sessions(
    session: Session, *, state: SessionState | None = None, profile: str | None = None
) -> list[ProfilingSession]:
    query = select(ProfilingSessionRow)
    if state is not None:
        query = query.where(ProfilingSessionRow.state == state.value)
    if profile is not None:
        query = query.where(ProfilingSessionRow.profile_name == profile)
    query = query.order_by(ProfilingSessionRow.started_at.desc(), ProfilingSessionRow.id)
    return _sessions(session, list(session.scalars(query)))


def active_sessions(session: Session) -> tuple[ProfilingSession, ...]:
    """The sessions enforcers must record for (the bundle carries them)."""
    return tuple(list_sessions(session, state=SessionState.ACTIVE))


def _observations(session: Session, session_id: str) -> list[Observation]:
    query = (
        select(ProfileObservationRow)
        .where(ProfileObservationRow.session_id == session_id)
        .order_by(ProfileObservationRow.id)
        .execution_options(yield_per=1000)
    )
    return [
        observation_from_json(
            {
                **row.fields,
                "kind": row.kind,
                "container_id": row.container_id,
                "observed_at": row.observed_at.isoformat(),
            },
            f"stored observation {row.id}",
        )
        for row in session.scalars(query)
    ]


def _stop(
    session: Session, row: ProfilingSessionRow, *, actor: str, now: datetime, why: str
) -> StopResult:
    if row.state != SessionState.ACTIVE.value:
        raise ConflictError(
            f"profiling session {row.id} was already stopped "
            f"({row.stopped_at.isoformat() if row.stopped_at else 'earlier'})"
        )
    row.state, row.active_profile = SessionState.STOPPED.value, None
    row.stopped_at, row.stopped_by = now, actor
    session.flush()
    domain = _sessions(session, [row])[0]
    observations = _observations(session, row.id)
    base_row = _profile_row(session, row.profile_name)
    base = _profile(base_row) if base_row is not None else None
    built = merge(base, observations, append=row.append, session=domain, now=now)
    saved = _save(session, built, change="applied", actor=actor, now=now, mode_switched=True)
    row.applied_to = saved.id
    profile = _profile(saved)
    how = "appended to" if row.append and base is not None else "applied as"
    _event(
        session,
        action="profile.applied",
        message=(
            f"profiling of {row.repository} stopped ({why}): {len(observations)} observation(s) "
            f"from {len(domain.containers)} container(s) {how} runtime profile "
            f"{profile.name!r} v{profile.version}, in audit mode"
        ),
        actor=actor,
        now=now,
        profile=profile.name,
        data={
            "session_id": row.id,
            "version": profile.version,
            "observations": len(observations),
            "executables": len(profile.executables),
            "containers": list(domain.containers),
        },
    )
    return StopResult(session=domain, profile=profile, observations=len(observations))


def stop_session(session: Session, *, session_id: str, actor: str, now: datetime) -> StopResult:
    """Stop an active session: its profile is built and applied in audit mode."""
    row = session.get(ProfilingSessionRow, session_id, with_for_update=True)
    if row is None:
        raise NotFoundError(f"profiling session {session_id!r} not found")
    return _stop(session, row, actor=actor, now=now, why=f"by {actor}")


def _due_ids(session: Session, now: datetime) -> list[str]:
    query = (
        select(ProfilingSessionRow.id)
        .where(
            ProfilingSessionRow.state == SessionState.ACTIVE.value,
            ProfilingSessionRow.ends_at.is_not(None),
            ProfilingSessionRow.ends_at <= now,
        )
        .order_by(ProfilingSessionRow.ends_at)
    )
    return list(session.scalars(query))


def _abandon(session: Session, session_id: str, error: TidegateError, now: datetime) -> None:
    """A due session that cannot be applied stops without a profile (else it fails each tick)."""
    row = session.get(ProfilingSessionRow, session_id, with_for_update=True)
    if row is None or row.state != SessionState.ACTIVE.value:
        return
    row.state, row.active_profile = SessionState.STOPPED.value, None
    row.stopped_at, row.stopped_by = now, PROFILER_ACTOR
    _event(
        session,
        action="profiling.failed",
        message=f"profiling session {row.id} ended without a profile: {error}",
        actor=PROFILER_ACTOR,
        now=now,
        profile=row.profile_name,
        level=EventLevel.ERROR,
        data={"session_id": row.id},
    )


def stop_due_sessions(database: Database, *, now: datetime) -> list[StopResult]:
    """The automatic profiler's end: every active session whose time is up is stopped and its
    profile applied (audit mode only), each in its own transaction."""
    with database.session() as session:
        due = _due_ids(session, now)
    stopped = []
    for session_id in due:
        try:
            with database.session() as session:
                row = session.get(ProfilingSessionRow, session_id, with_for_update=True)
                if row is None or row.state != SessionState.ACTIVE.value:
                    continue  # stopped meanwhile (by a person, or another replica)
                why = "its learning time is over"
                stopped.append(_stop(session, row, actor=PROFILER_ACTOR, now=now, why=why))
        except (ConflictError, UsageError) as exc:
            with database.session() as session:
                _abandon(session, session_id, exc, now)
    return stopped


# --- enforcer side -----------------------------------------------------------------------------


def _join(session: Session, row: ProfilingSessionRow, container_id: str, now: datetime) -> bool:
    """Record a container in a session; whether it is new there."""
    query = select(ProfilingContainerRow).where(
        ProfilingContainerRow.session_id == row.id,
        ProfilingContainerRow.container_id == container_id,
    )
    known = session.scalars(query).first()
    if known is not None:
        known.exited = None  # a restarted container is running again
        return False
    session.add(ProfilingContainerRow(session_id=row.id, container_id=container_id, joined=now))
    session.flush()
    return True


def join_env_session(
    session: Session,
    *,
    profile: str,
    image_ref: str,
    digest: str | None,
    container_id: str,
    append: bool,
    group: str,
    now: datetime,
) -> tuple[ProfilingSession, bool]:
    """A container started with TIDEGATE_PROFILE=<profile>: join the profile's active session,
    or start one (origin env). Returns (session, whether it was started now)."""
    check_profile_name(profile, "profile")
    repository = repository_of(image_ref)
    row = _active_row(session, profile)
    started = row is None
    if row is None:
        row = _insert_session(
            session,
            profile=profile,
            repository=repository,
            digest=digest,
            append=append,
            origin=SessionOrigin.ENV,
            actor=f"enforcer-group:{group}",
            now=now,
            ends_at=None,
        )
    elif row.repository != repository:
        raise ConflictError(
            f"runtime profile {profile!r} is being learned from {row.repository!r}; container "
            f"{container_id[:12]} runs {repository!r}"
        )
    _join(session, row, container_id, now)
    return _sessions(session, [row])[0], started


def container_exited(
    session: Session, *, container_id: str, group: str, now: datetime
) -> list[StopResult]:
    """Mark the container exited in the active sessions that saw it; an env-started session whose
    last container exited stops (its profile applied in audit mode)."""
    query = (
        select(ProfilingSessionRow, ProfilingContainerRow)
        .join(ProfilingContainerRow, ProfilingContainerRow.session_id == ProfilingSessionRow.id)
        .where(
            ProfilingContainerRow.container_id == container_id,
            ProfilingSessionRow.state == SessionState.ACTIVE.value,
        )
    )
    stopped = []
    for row, container in list(session.execute(query)):
        container.exited = container.exited or now
        session.flush()
        if row.origin != SessionOrigin.ENV.value:
            continue
        running = select(ProfilingContainerRow.id).where(
            ProfilingContainerRow.session_id == row.id, ProfilingContainerRow.exited.is_(None)
        )
        if session.scalars(running).first() is None:
            why = f"its last container {container_id[:12]} exited"
            stopped.append(_stop(session, row, actor=f"enforcer-group:{group}", now=now, why=why))
    return stopped


def _known_keys(session: Session, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    by_session: dict[str, list[str]] = defaultdict(list)
    for session_id, key in pairs:
        by_session[session_id].append(key)
    known: set[tuple[str, str]] = set()
    for session_id, keys in by_session.items():
        for start in range(0, len(keys), _CHUNK):
            query = select(ProfileObservationRow.idempotency_key).where(
                ProfileObservationRow.session_id == session_id,
                ProfileObservationRow.idempotency_key.in_(keys[start : start + _CHUNK]),
            )
            known.update((session_id, k) for k in session.scalars(query))
    return known


def _session_rows(session: Session, ids: set[str]) -> dict[str, ProfilingSessionRow]:
    rows = session.scalars(select(ProfilingSessionRow).where(ProfilingSessionRow.id.in_(ids)))
    found = {row.id: row for row in rows}
    missing = sorted(ids - set(found))
    if missing:
        raise NotFoundError(
            f"profiling session(s) {', '.join(repr(m) for m in missing[:5])} not found: "
            "nothing of the batch was stored"
        )
    return found


def record_observations(
    session: Session, *, items: Sequence[ObservationIn], now: datetime
) -> ObservationBatchResult:
    """Store a batch; a key already stored is a duplicate, a session no longer active is ignored,
    an unknown session refuses the whole batch (NotFoundError, nothing stored)."""
    rows = _session_rows(session, {item.session_id for item in items})
    known = _known_keys(session, [(i.session_id, i.key) for i in items])
    accepted: list[str] = []
    duplicates: list[str] = []
    ignored: list[str] = []
    joined: set[tuple[str, str]] = set()
    for item in items:
        row = rows[item.session_id]
        if row.state != SessionState.ACTIVE.value:
            ignored.append(item.key)
            continue
        if (item.session_id, item.key) in known:
            duplicates.append(item.key)
            continue
        known.add((item.session_id, item.key))
        seen = item.observation
        if (row.id, seen.container_id) not in joined:
            joined.add((row.id, seen.container_id))
            _join_quietly(session, row, seen.container_id, now)
        fields = observation_to_json(seen)
        for envelope in ("kind", "container_id", "observed_at"):
            fields.pop(envelope)
        session.add(
            ProfileObservationRow(
                session_id=row.id,
                idempotency_key=item.key,
                kind=seen.kind.value,
                container_id=seen.container_id,
                observed_at=seen.observed_at,
                fields=fields,
                received=now,
            )
        )
        accepted.append(item.key)
    session.flush()
    return ObservationBatchResult(tuple(accepted), tuple(duplicates), tuple(ignored))


def _join_quietly(
    session: Session, row: ProfilingSessionRow, container_id: str, now: datetime
) -> None:
    """Containers seen through observations are "seen"; an exited one is not revived."""
    query = select(ProfilingContainerRow.id).where(
        ProfilingContainerRow.session_id == row.id,
        ProfilingContainerRow.container_id == container_id,
    )
    if session.scalars(query).first() is None:
        session.add(ProfilingContainerRow(session_id=row.id, container_id=container_id, joined=now))


# --- readiness and the bundle ------------------------------------------------------------------


def _learned_sessions(session: Session, row: RuntimeProfileRow) -> tuple[ProfilingSession, ...]:
    """Stopped sessions newest first, back to the last one that replaced the profile (a deleted
    namesake's sessions fed another profile row: not these)."""
    query = (
        select(ProfilingSessionRow)
        .where(ProfilingSessionRow.applied_to == row.id)
        .order_by(ProfilingSessionRow.stopped_at.desc(), ProfilingSessionRow.id)
    )
    out = []
    for found in _sessions(session, list(session.scalars(query))):
        out.append(found)
        if not found.append:
            break
    return tuple(out)


def readiness(session: Session, *, name: str, latest: int = 20) -> Readiness:
    """DETECT events of the runtime monitor against the profile since it was applied or last
    switched mode: what an enforce switch would have blocked."""
    row = _require_profile_row(session, name)
    query = (
        select(EventRow)
        .where(
            EventRow.policy == name,
            EventRow.level == EventLevel.DETECT.value,
            EventRow.category == EventCategory.RUNTIME.value,
            EventRow.ts >= row.mode_since,
        )
        .order_by(EventRow.ts.desc(), EventRow.id.desc())
        .execution_options(yield_per=1000)
    )
    total = 0
    counts: dict[str, list[Any]] = {}
    newest: list[Event] = []
    for event in session.scalars(query):
        if (event.data or {}).get("control") != PROFILE_CONTROL:
            continue
        total += 1
        if len(newest) < latest:
            newest.append(to_event(event))
        path = str(event.data.get("executable") or "(unknown)")
        entry = counts.setdefault(path, [0, event.ts, event.ts])
        entry[0] += 1
        entry[1] = min(entry[1], event.ts)
        entry[2] = max(entry[2], event.ts)
    executables = sorted(
        (ExecutableReadiness(p, c, first, last) for p, (c, first, last) in counts.items()),
        key=lambda e: (-e.count, e.path),
    )
    return Readiness(
        profile=_profile(row),
        since=row.mode_since,
        total=total,
        executables=tuple(executables),
        latest=tuple(newest),
        sessions=_learned_sessions(session, row),
    )


def profiles_for_bundle(session: Session) -> tuple[RuntimeProfile, ...]:
    return tuple(list_profiles(session))


def profiles_fingerprint(session: Session) -> str:
    """Changes whenever the profiles or the active sessions an enforcer needs change: two
    narrow queries, no documents read (versions move with every content or mode change)."""
    digest = hashlib.sha256()
    query = select(
        RuntimeProfileRow.id, RuntimeProfileRow.name, RuntimeProfileRow.version
    ).order_by(RuntimeProfileRow.id)
    for profile_id, name, version in session.execute(query):
        digest.update(f"p|{profile_id}|{name}|{version}\n".encode())
    active = select(ProfilingSessionRow.id).where(ProfilingSessionRow.active_profile.is_not(None))
    for session_id in sorted(session.scalars(active)):
        digest.update(f"s|{session_id}\n".encode())
    return digest.hexdigest()
