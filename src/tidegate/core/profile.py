"""Image profiles: what an image's containers were seen doing while the image was profiled.

Owns: `RuntimeProfile` (the executables, volume mounts, network listeners and outbound endpoints
learned for one image repository, in audit or enforce mode), `ProfilingSession` (one learning
period), `Observation` (one thing the enforcer saw a container do while profiling), `merge`
(observations -> profile, replacing or appending), `to_image_profile` (what the runtime monitor
enforces), and the JSON and YAML-document forms, where hostile input is refused with a
`ProfileError` naming the field.

A profile belongs to a repository ("localhost:5000/shop/api", no tag or digest): it applies to
every image of it, so a new build of the same application keeps its profile. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from tidegate.core.drift import ImageProfile
from tidegate.core.errors import ProfileError
from tidegate.core.policy import Mode
from tidegate.core.runtime import split_image_name

__all__ = [
    "DOCUMENT_KIND",
    "NetEndpoint",
    "Observation",
    "ObservationKind",
    "ProfileError",
    "ProfileExecutable",
    "ProfileSource",
    "ProfileVolume",
    "ProfilingSession",
    "RuntimeProfile",
    "SessionOrigin",
    "SessionState",
    "check_profile_name",
    "endpoint_from_json",
    "endpoint_to_json",
    "merge",
    "observation_from_json",
    "observation_to_json",
    "profile_changes",
    "profile_from_document",
    "profile_from_json",
    "profile_to_document",
    "profile_to_json",
    "repository_of",
    "session_from_json",
    "session_to_json",
    "to_image_profile",
    "with_content",
]

DOCUMENT_KIND = "RuntimeProfile"
MAX_EXECUTABLES = 50_000
MAX_VOLUMES = 1_000
MAX_ENDPOINTS = 10_000
MAX_LEARNED_FROM = 100
"""Digests a profile remembers learning from (the newest kept)."""
MAX_PATH = 4096
PROTOCOLS = ("tcp", "udp")
RESERVED_NAMES = frozenset({"sessions"})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,511}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
_E = TypeVar("_E", bound=StrEnum)


class ProfileSource(StrEnum):
    MANUAL = "manual"
    """Learned in a session started by a person (API, CLI, container environment) or written."""
    AUTOMATIC = "automatic"
    """Learned by the automatic profiler for a set time."""


class SessionOrigin(StrEnum):
    API = "api"
    ENV = "env"
    """A container started with TIDEGATE_PROFILE=<name> in its environment."""
    AUTOMATIC = "automatic"


class SessionState(StrEnum):
    ACTIVE = "active"
    STOPPED = "stopped"


class ObservationKind(StrEnum):
    EXEC = "exec"
    VOLUME = "volume"
    LISTEN = "listen"
    CONNECT = "connect"


@dataclass(frozen=True, slots=True, order=True)
class NetEndpoint:
    """A network endpoint: a listener, or the far end of an outbound connection."""

    protocol: str
    """"tcp" or "udp"."""
    port: int
    address: str = ""
    """An IP address or network ("10.0.0.0/8"); empty: any address."""


@dataclass(frozen=True, slots=True, order=True)
class ProfileExecutable:
    path: str
    """Container-relative ("/usr/bin/python3")."""
    sha256: str | None = None
    """Hex digest learned; None: any content (learned with several, or written without one)."""


@dataclass(frozen=True, slots=True, order=True)
class ProfileVolume:
    destination: str
    """Where it is mounted in the container."""
    source: str = ""
    """The host path or volume name mounted there (empty: any)."""


@dataclass(frozen=True, slots=True)
class RuntimeProfile:
    """What one repository's containers may do, as learned (and perhaps edited)."""

    name: str
    repository: str
    """The image name without tag or digest: the profile covers every image of it."""
    mode: Mode = Mode.AUDIT
    """Applied profiles start in audit; someone switches them to enforce."""
    version: int = 1
    executables: tuple[ProfileExecutable, ...] = ()
    volumes: tuple[ProfileVolume, ...] = ()
    listeners: tuple[NetEndpoint, ...] = ()
    outbound: tuple[NetEndpoint, ...] = ()
    source: ProfileSource = ProfileSource.MANUAL
    learned_from: tuple[str, ...] = ()
    """Image digests it was learned from, oldest first."""
    applied_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProfilingSession:
    """One learning period of one profile."""

    id: str
    profile: str
    repository: str
    digest: str | None
    """The image digest profiled, when known (the profile still covers the whole repository)."""
    append: bool
    """Add to the existing profile instead of replacing it."""
    origin: SessionOrigin
    started_at: datetime
    started_by: str
    ends_at: datetime | None = None
    """When the automatic profiler stops it; None: stopped by a person or its last container."""
    state: SessionState = SessionState.ACTIVE
    containers: tuple[str, ...] = ()
    """Containers seen in the session."""
    stopped_at: datetime | None = None
    stopped_by: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing a profiled container did; only the fields of its kind are set."""

    kind: ObservationKind
    container_id: str
    observed_at: datetime
    path: str = ""
    """exec: the executable."""
    sha256: str | None = None
    """exec: its content's hex digest, when computed."""
    destination: str = ""
    """volume: the mount point in the container."""
    source: str = ""
    """volume: the host path or volume name."""
    endpoint: NetEndpoint | None = None
    """listen / connect."""


# --- validation of single values ---------------------------------------------------------------


def _fail(where: str, what: str) -> ProfileError:
    return ProfileError(f"{where}: {what}")


def check_profile_name(value: object, where: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _fail(
            where,
            f"{str(value)[:80]!r} is not a profile name (letters, digits, '.', '_', '-'; "
            "up to 128, starting with a letter or digit)",
        )
    if value in RESERVED_NAMES:
        raise _fail(
            where, f"{value!r} is reserved (the API's /profiles/{value} means another thing)"
        )
    return value


def repository_of(image_ref: str) -> str:
    """The repository an image name belongs to ("nginx:1" -> "docker.io/library/nginx")."""
    return split_image_name(image_ref).name


def _check_repository(value: object, where: str) -> str:
    if not isinstance(value, str) or not _REPOSITORY.fullmatch(value):
        raise _fail(where, f"{str(value)[:80]!r} is not an image repository")
    name = split_image_name(value)
    if name.tag or name.digest:
        raise _fail(where, f"{value!r}: give the repository without a tag or digest")
    return name.name


def _check_path(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_PATH:
        raise _fail(where, f"{str(value)[:80]!r} is not an absolute path")
    # normpath keeps a leading "//" (POSIX leaves it implementation-defined): refuse it too.
    if "\x00" in value or value.startswith("//") or posixpath.normpath(value) != value:
        raise _fail(where, f"{value[:80]!r} is not a normalized absolute path")
    return value


def _check_sha256(value: object, where: str) -> str | None:
    if value is None:
        return None
    text = value.lower().removeprefix("sha256:") if isinstance(value, str) else None
    if text is None or not _HEX64.fullmatch(text):
        raise _fail(where, f"{str(value)[:80]!r} is not a sha256 hex digest")
    return text


def _check_digest(value: object, where: str) -> str:
    if not isinstance(value, str) or not _DIGEST.fullmatch(value):
        raise _fail(where, f"{str(value)[:80]!r} is not an image digest (sha256:<64 hex>)")
    return value


def _check_text(value: object, where: str, limit: int, *, empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise _fail(where, f"expected a string of up to {limit} characters")
    if not empty and not value:
        raise _fail(where, "must not be empty")
    return value


def _check_endpoint(protocol: object, port: object, address: object, where: str) -> NetEndpoint:
    if not isinstance(protocol, str) or protocol.lower() not in PROTOCOLS:
        raise _fail(f"{where}.protocol", f"{str(protocol)[:20]!r} is not one of tcp, udp")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise _fail(f"{where}.port", f"{str(port)[:20]!r} is not a port (1-65535)")
    if address is None or address == "":
        return NetEndpoint(protocol.lower(), port, "")
    if not isinstance(address, str) or len(address) > 64:
        raise _fail(f"{where}.address", "expected an IP address or network")
    try:
        text = str(
            ipaddress.ip_network(address, strict=False)
            if "/" in address
            else ipaddress.ip_address(address)
        )
    except ValueError as exc:
        raise _fail(f"{where}.address", f"{address!r} is not an IP address or network") from exc
    return NetEndpoint(protocol.lower(), port, text)


# --- merging -----------------------------------------------------------------------------------


def _executables(items: Iterable[ProfileExecutable]) -> tuple[ProfileExecutable, ...]:
    """One entry per path; a path learned with different contents allows any content."""
    by_path: dict[str, str | None] = {}
    for item in items:
        if item.path in by_path and by_path[item.path] != item.sha256:
            # Two builds of one repository may ship different contents under one path; drift
            # prevention still holds each image to its own inventory.
            by_path[item.path] = None
        else:
            by_path.setdefault(item.path, item.sha256)
    return tuple(ProfileExecutable(p, h) for p, h in sorted(by_path.items()))


def _learned(old: tuple[str, ...], digest: str | None) -> tuple[str, ...]:
    if digest is None or digest in old:
        return old
    return (*old, digest)[-MAX_LEARNED_FROM:]


def merge(
    base: RuntimeProfile | None,
    observations: Iterable[Observation],
    *,
    append: bool,
    session: ProfilingSession,
    now: datetime,
) -> RuntimeProfile:
    """The profile a stopped session applies, in audit mode: the session's observations, added
    to `base` when appending, replacing its content otherwise (the version goes on either way)."""
    keep = base if append and base is not None else None
    executables = list(keep.executables) if keep else []
    volumes = set(keep.volumes) if keep else set()
    listeners = set(keep.listeners) if keep else set()
    outbound = set(keep.outbound) if keep else set()
    for seen in observations:
        match seen.kind:
            case ObservationKind.EXEC:
                executables.append(ProfileExecutable(seen.path, seen.sha256))
            case ObservationKind.VOLUME:
                volumes.add(ProfileVolume(seen.destination, seen.source))
            case ObservationKind.LISTEN if seen.endpoint is not None:
                listeners.add(seen.endpoint)
            case ObservationKind.CONNECT if seen.endpoint is not None:
                outbound.add(seen.endpoint)
    automatic = session.origin is SessionOrigin.AUTOMATIC
    return RuntimeProfile(
        name=session.profile,
        repository=session.repository,
        mode=Mode.AUDIT,
        version=base.version + 1 if base is not None else 1,
        executables=_executables(executables),
        volumes=tuple(sorted(volumes)),
        listeners=tuple(sorted(listeners)),
        outbound=tuple(sorted(outbound)),
        source=ProfileSource.AUTOMATIC if automatic else ProfileSource.MANUAL,
        learned_from=_learned(keep.learned_from if keep else (), session.digest),
        applied_at=now,
        updated_at=now,
    )


def to_image_profile(profile: RuntimeProfile) -> ImageProfile:
    """What the runtime monitor checks execs against."""
    return ImageProfile(
        name=profile.name,
        mode=profile.mode,
        executables={e.path: e.sha256 for e in profile.executables},
        version=profile.version,
    )


# --- JSON --------------------------------------------------------------------------------------


class _Reader:
    """Typed access to a hostile JSON object; every error names the field's path."""

    def __init__(self, data: object, where: str, allowed: Iterable[str] | None = None) -> None:
        if not isinstance(data, dict):
            raise ProfileError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where
        if allowed is not None:
            unknown = sorted(str(k) for k in data if k not in set(allowed))
            if unknown:
                raise ProfileError(f"{where}: unknown field(s) {', '.join(unknown)[:200]}")

    def at(self, key: str) -> str:
        return f"{self.where}.{key}"

    def get(self, key: str, default: object = None) -> object:
        return self.data.get(key, default)

    def text(self, key: str, limit: int = 255, *, empty: bool = True) -> str:
        return _check_text(self.get(key, ""), self.at(key), limit, empty=empty)

    def opt_text(self, key: str, limit: int = 255) -> str | None:
        value = self.get(key)
        return None if value is None else _check_text(value, self.at(key), limit)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise _fail(self.at(key), "expected true or false")
        return value

    def integer(self, key: str, default: int, low: int = 1) -> int:
        value = self.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise _fail(self.at(key), f"expected an integer of at least {low}")
        return value

    def items(self, key: str, limit: int) -> list[object]:
        value = self.get(key, [])
        if not isinstance(value, list):
            raise _fail(self.at(key), "expected a list")
        if len(value) > limit:
            raise _fail(self.at(key), f"{len(value)} items, at most {limit} allowed")
        return value

    def enum(self, key: str, cls: type[_E], default: _E | None = None) -> _E:
        value = self.get(key, default.value if default is not None else None)
        try:
            return cls(str(value))
        except ValueError as exc:
            allowed = ", ".join(m.value for m in cls)
            raise _fail(self.at(key), f"{str(value)[:40]!r} is not one of {allowed}") from exc

    def time(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str):
            raise _fail(self.at(key), "expected an ISO 8601 time")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise _fail(self.at(key), f"{value[:40]!r} is not an ISO 8601 time") from exc
        if parsed.tzinfo is None:
            raise _fail(self.at(key), "must carry a time zone")
        return parsed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def endpoint_to_json(endpoint: NetEndpoint) -> dict[str, Any]:
    return {"protocol": endpoint.protocol, "port": endpoint.port, "address": endpoint.address}


def endpoint_from_json(data: object, where: str) -> NetEndpoint:
    r = _Reader(data, where, ("protocol", "port", "address"))
    return _check_endpoint(r.get("protocol"), r.get("port"), r.get("address", ""), where)


def _content_to_json(profile: RuntimeProfile) -> dict[str, Any]:
    return {
        "executables": [{"path": e.path, "sha256": e.sha256} for e in profile.executables],
        "volumes": [{"destination": v.destination, "source": v.source} for v in profile.volumes],
        "listeners": [endpoint_to_json(e) for e in profile.listeners],
        "outbound": [endpoint_to_json(e) for e in profile.outbound],
    }


def _unique(values: list[Any], where: str, what: str) -> tuple[Any, ...]:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise _fail(where, f"{what} {value!r} is listed twice")
        seen.add(value)
    return tuple(sorted(values))


def _content_from(r: _Reader) -> dict[str, Any]:
    executables = []
    for i, item in enumerate(r.items("executables", MAX_EXECUTABLES)):
        e = _Reader(item, f"{r.at('executables')}[{i}]", ("path", "sha256"))
        executables.append(
            ProfileExecutable(
                _check_path(e.get("path"), e.at("path")),
                _check_sha256(e.get("sha256"), e.at("sha256")),
            )
        )
    _unique([x.path for x in executables], r.at("executables"), "path")
    volumes = []
    for i, item in enumerate(r.items("volumes", MAX_VOLUMES)):
        v = _Reader(item, f"{r.at('volumes')}[{i}]", ("destination", "source"))
        volumes.append(
            ProfileVolume(
                _check_path(v.get("destination"), v.at("destination")),
                v.text("source", MAX_PATH),
            )
        )
    return {
        "executables": tuple(sorted(executables)),
        "volumes": _unique(volumes, r.at("volumes"), "volume"),
        "listeners": _endpoints(r, "listeners"),
        "outbound": _endpoints(r, "outbound"),
    }


def _endpoints(r: _Reader, key: str) -> tuple[NetEndpoint, ...]:
    found = [
        endpoint_from_json(item, f"{r.at(key)}[{i}]")
        for i, item in enumerate(r.items(key, MAX_ENDPOINTS))
    ]
    return _unique(found, r.at(key), "endpoint")


_PROFILE_FIELDS = (
    "name",
    "repository",
    "mode",
    "version",
    "executables",
    "volumes",
    "listeners",
    "outbound",
    "source",
    "learned_from",
    "applied_at",
    "updated_at",
)


def profile_to_json(profile: RuntimeProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "repository": profile.repository,
        "mode": profile.mode.value,
        "version": profile.version,
        **_content_to_json(profile),
        "source": profile.source.value,
        "learned_from": list(profile.learned_from),
        "applied_at": _iso(profile.applied_at),
        "updated_at": _iso(profile.updated_at),
    }


def profile_from_json(data: object, where: str = "profile") -> RuntimeProfile:
    r = _Reader(data, where, _PROFILE_FIELDS)
    learned = r.items("learned_from", MAX_LEARNED_FROM)
    return RuntimeProfile(
        name=check_profile_name(r.get("name"), r.at("name")),
        repository=_check_repository(r.get("repository"), r.at("repository")),
        mode=r.enum("mode", Mode, Mode.AUDIT),
        version=r.integer("version", 1),
        source=r.enum("source", ProfileSource, ProfileSource.MANUAL),
        learned_from=tuple(
            _check_digest(d, f"{r.at('learned_from')}[{i}]") for i, d in enumerate(learned)
        ),
        applied_at=r.time("applied_at"),
        updated_at=r.time("updated_at"),
        **_content_from(r),
    )


def profile_to_document(profile: RuntimeProfile) -> dict[str, Any]:
    """The `tidegate export` / `apply -f` form: what a person reviews and edits."""
    return {
        "kind": DOCUMENT_KIND,
        "name": profile.name,
        "repository": profile.repository,
        "mode": profile.mode.value,
        **_content_to_json(profile),
    }


_DOCUMENT_FIELDS = ("kind", "name", "repository", "mode", "executables", "volumes")


def profile_from_document(data: object, where: str = "RuntimeProfile") -> RuntimeProfile:
    """A profile as a person wrote it (version, source and times are the console's to set)."""
    r = _Reader(data, where, (*_DOCUMENT_FIELDS, "listeners", "outbound"))
    kind = r.get("kind", DOCUMENT_KIND)
    if kind != DOCUMENT_KIND:
        raise _fail(r.at("kind"), f"{str(kind)[:40]!r} is not {DOCUMENT_KIND}")
    return RuntimeProfile(
        name=check_profile_name(r.get("name"), r.at("name")),
        repository=_check_repository(r.get("repository"), r.at("repository")),
        mode=r.enum("mode", Mode, Mode.AUDIT),
        **_content_from(r),
    )


def with_content(profile: RuntimeProfile, edited: RuntimeProfile) -> RuntimeProfile:
    """`profile` with the editable content of `edited` (repository, what it allows)."""
    return replace(
        profile,
        repository=edited.repository,
        executables=edited.executables,
        volumes=edited.volumes,
        listeners=edited.listeners,
        outbound=edited.outbound,
    )


def session_to_json(session: ProfilingSession) -> dict[str, Any]:
    return {
        "id": session.id,
        "profile": session.profile,
        "repository": session.repository,
        "digest": session.digest,
        "append": session.append,
        "origin": session.origin.value,
        "started_at": session.started_at.isoformat(),
        "started_by": session.started_by,
        "ends_at": _iso(session.ends_at),
        "state": session.state.value,
        "containers": list(session.containers),
        "stopped_at": _iso(session.stopped_at),
        "stopped_by": session.stopped_by,
    }


_SESSION_FIELDS = (
    "id",
    "profile",
    "repository",
    "digest",
    "append",
    "origin",
    "started_at",
    "started_by",
    "ends_at",
    "state",
    "containers",
    "stopped_at",
    "stopped_by",
)


def session_from_json(data: object, where: str = "session") -> ProfilingSession:
    r = _Reader(data, where, _SESSION_FIELDS)
    digest = r.get("digest")
    started = r.time("started_at", required=True)
    assert started is not None
    containers = r.items("containers", 100_000)
    return ProfilingSession(
        id=r.text("id", 64, empty=False),
        profile=check_profile_name(r.get("profile"), r.at("profile")),
        repository=_check_repository(r.get("repository"), r.at("repository")),
        digest=None if digest is None else _check_digest(digest, r.at("digest")),
        append=r.flag("append"),
        origin=r.enum("origin", SessionOrigin),
        started_at=started,
        started_by=r.text("started_by", empty=False),
        ends_at=r.time("ends_at"),
        state=r.enum("state", SessionState, SessionState.ACTIVE),
        containers=tuple(
            _check_text(c, f"{r.at('containers')}[{i}]", 128, empty=False)
            for i, c in enumerate(containers)
        ),
        stopped_at=r.time("stopped_at"),
        stopped_by=r.opt_text("stopped_by"),
    )


_OBSERVATION_FIELDS: Mapping[ObservationKind, tuple[str, ...]] = {
    ObservationKind.EXEC: ("path", "sha256"),
    ObservationKind.VOLUME: ("destination", "source"),
    ObservationKind.LISTEN: ("protocol", "port", "address"),
    ObservationKind.CONNECT: ("protocol", "port", "address"),
}
_OBSERVATION_COMMON = ("kind", "container_id", "observed_at")


def observation_to_json(seen: Observation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": seen.kind.value,
        "container_id": seen.container_id,
        "observed_at": seen.observed_at.isoformat(),
    }
    match seen.kind:
        case ObservationKind.EXEC:
            out.update(path=seen.path, sha256=seen.sha256)
        case ObservationKind.VOLUME:
            out.update(destination=seen.destination, source=seen.source)
        case ObservationKind.LISTEN | ObservationKind.CONNECT:
            assert seen.endpoint is not None
            out.update(endpoint_to_json(seen.endpoint))
    return out


def observation_from_json(
    data: object, where: str = "observation", *, extra: Iterable[str] = ()
) -> Observation:
    """One observation; `extra` names envelope fields the caller reads itself (key, session)."""
    kind = _Reader(data, where).enum("kind", ObservationKind)
    r = _Reader(data, where, (*_OBSERVATION_COMMON, *_OBSERVATION_FIELDS[kind], *extra))
    observed = r.time("observed_at", required=True)
    assert observed is not None
    common: dict[str, Any] = {
        "kind": kind,
        "container_id": r.text("container_id", 128, empty=False),
        "observed_at": observed,
    }
    match kind:
        case ObservationKind.EXEC:
            return Observation(
                **common,
                path=_check_path(r.get("path"), r.at("path")),
                sha256=_check_sha256(r.get("sha256"), r.at("sha256")),
            )
        case ObservationKind.VOLUME:
            return Observation(
                **common,
                destination=_check_path(r.get("destination"), r.at("destination")),
                source=r.text("source", MAX_PATH),
            )
        case ObservationKind.LISTEN | ObservationKind.CONNECT:
            endpoint = _check_endpoint(
                r.get("protocol"), r.get("port"), r.get("address", ""), where
            )
            return Observation(**common, endpoint=endpoint)


def profile_changes(before: RuntimeProfile, after: RuntimeProfile) -> list[str]:
    """The names of the fields a person can edit that differ (for audit messages)."""
    fields = ("repository", "mode", "executables", "volumes", "listeners", "outbound")
    return [name for name in fields if getattr(before, name) != getattr(after, name)]
