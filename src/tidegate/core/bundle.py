"""The policy bundle: everything an enforcer needs to decide container starts on its own.

Owns: `PolicyBundle` (the group's settings, the runtime policies, the services, and an
`ImageIndex` of every registered image by manifest digest, config digest and name), its JSON form
(`bundle_to_json` / `bundle_from_json`, hostile input refused with a `BundleError` naming the
field), the JSON form of runtime policies and services (shared with the console's store), and the
bundle version: a hash of the content, so an unchanged bundle keeps its version (ETag).

Digests are kept as their first 128 bits (16 bytes; sha256 digests are uniform, so no two images
share them in practice): 100,000 images fit in a few MB and a lookup is one dict probe, while
forging an image whose digest matches a registered one stays out of reach (2^128 work).

The executable inventory of an image (drift prevention) is path -> sha256 of the file's content,
kept the same way: the first 16 bytes of the sha256, as 32 hex characters in memory and as one
base64 blob per inventory in the JSON (16 bytes per path, in the order of `paths`; 16 zero bytes
for a file whose hash is unknown). `core.drift` compares such a prefix with the full hash of the
executed file on their common length (`core.drift.same_hash`).

Image profiling (format 3): the applied runtime profiles by image repository (`ImageProfile`:
name, mode, version, executables path -> sha256 or None), which the monitor checks execs
against, and the active profiling sessions (`ProfilingTarget`: id, profile, repository, digest),
which tell an enforcer whose containers to record.

Format 2 added the hashes, format 3 the profiles; a bundle of another format is refused with a
`BundleError` (an enforcer then keeps deciding from what it has, or fetches the bundle again when
it has none). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from tidegate.core.drift import ImageProfile
from tidegate.core.errors import BundleError
from tidegate.core.policy import LabelRule, Mode
from tidegate.core.runtime import (
    ImageState,
    ImageStateKind,
    RuntimeControls,
    RuntimePolicy,
    RuntimePolicyId,
    RuntimeScope,
    Service,
    ServiceRule,
    split_image_name,
)

__all__ = [
    "BUNDLE_FORMAT",
    "HASH_BYTES",
    "BundleError",
    "EnforcerGroupInfo",
    "FailMode",
    "ImageIndex",
    "ImageRecord",
    "PolicyBundle",
    "ProfilingTarget",
    "build_bundle",
    "build_image_index",
    "bundle_from_json",
    "bundle_to_json",
    "digest_key",
    "hash_prefix",
    "runtime_policy_from_json",
    "runtime_policy_to_json",
    "service_from_json",
    "service_to_json",
]

BUNDLE_FORMAT = 3
KEY_BYTES = 16
HASH_BYTES = 16
_NO_HASH = bytes(HASH_BYTES)
_E = TypeVar("_E", bound=StrEnum)


class FailMode(StrEnum):
    OPEN = "open"
    """Undecidable (no bundle, malformed request): allow, and record why."""
    CLOSED = "closed"
    """Undecidable: deny."""


@dataclass(frozen=True, slots=True)
class EnforcerGroupInfo:
    name: str
    mode: Mode = Mode.AUDIT
    admission_enabled: bool = True
    fail_mode: FailMode = FailMode.OPEN
    audit_all: bool = False
    """Record allowed starts too (level info), not only violations."""


_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]+")
MAX_PROFILE_PATH = 4096


def digest_key(digest: str) -> bytes:
    """The 16-byte key of a digest: "sha256:<hex>", a bare 64-hex image ID, or another algorithm."""
    text = digest.strip().lower()
    hex_part = text[7:] if text.startswith("sha256:") else text
    if _HEX64.fullmatch(hex_part):
        return bytes.fromhex(hex_part[: KEY_BYTES * 2])
    return hashlib.sha256(text.encode()).digest()[:KEY_BYTES]


def hash_prefix(sha256: str | None) -> str | None:
    """The inventory form of a content hash: its first HASH_BYTES bytes as lowercase hex (None for
    a missing hash or one that is not hex of at least that length)."""
    if sha256 is None:
        return None
    text = sha256.strip().lower().removeprefix("sha256:")[: HASH_BYTES * 2]
    if len(text) != HASH_BYTES * 2 or not _HEX.fullmatch(text):
        return None
    return text


Inventory = Mapping[str, str | None]
"""Container-relative executable path -> hash prefix (`hash_prefix`; None: not known)."""


def _name_key(ref: str) -> str:
    """The canonical `registry/repository:tag` an image name is indexed under."""
    name = split_image_name(ref)
    return f"{name.name}:{name.tag or 'latest'}"


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One inventory image as the bundle builder takes it."""

    status: ImageStateKind
    manifest_digest: str | None = None
    config_digest: str | None = None
    names: tuple[str, ...] = ()
    """Names it currently carries ("registry/repo:tag")."""
    reason: str = ""
    executables: Mapping[str, str | None] | tuple[str, ...] = ()
    """The image's executables (drift prevention): path -> sha256 hex of the content (None: not
    known), or only the paths."""

    def inventory(self) -> dict[str, str | None]:
        """Path -> hash prefix (`hash_prefix`) of every executable."""
        if isinstance(self.executables, tuple):
            return dict.fromkeys(self.executables)
        return {path: hash_prefix(sha) for path, sha in self.executables.items()}


@dataclass(frozen=True, slots=True)
class ImageIndex:
    """Registered images by every identity: digest keys -> state, names -> digest key."""

    states: Mapping[bytes, ImageStateKind] = field(default_factory=dict)
    reasons: Mapping[bytes, str] = field(default_factory=dict)
    names: Mapping[str, bytes] = field(default_factory=dict)
    executables: Mapping[bytes, Inventory] = field(default_factory=dict)
    """Digest key -> the image's executable inventory (hash prefixes)."""

    def __len__(self) -> int:
        return len(self.states)

    def _state(self, key: bytes, how: str) -> ImageState | None:
        kind = self.states.get(key)
        if kind is None:
            return None
        reason = self.reasons.get(key) or f"matched by {how}"
        return ImageState(kind=kind, reason=reason)

    def lookup(
        self,
        *,
        image_id: str | None = None,
        manifest_digest: str | None = None,
        image_ref: str | None = None,
    ) -> ImageState:
        """The image's state by any identity it was started with (DESIGN.md "Image identity")."""
        candidates: list[tuple[bytes, str]] = []
        if manifest_digest:
            candidates.append((digest_key(manifest_digest), "manifest digest"))
        if image_id:
            candidates.append((digest_key(image_id), "config digest"))
        if image_ref:
            name = split_image_name(image_ref)
            if name.digest:
                candidates.append((digest_key(name.digest), "digest in the image name"))
            elif _HEX64.fullmatch(image_ref.lower().removeprefix("sha256:")):
                candidates.append((digest_key(image_ref), "image ID"))
            else:
                key = self.names.get(_name_key(image_ref))
                if key is not None:
                    candidates.append((key, f"name {_name_key(image_ref)}"))
        for key, how in candidates:
            state = self._state(key, how)
            if state is not None:
                return state
        return ImageState(kind=ImageStateKind.UNREGISTERED, reason="unknown to the console")

    def inventory_of(self, *digests: str) -> Inventory | None:
        """The image's executables, path -> hash prefix, by any of its digests (None: unknown)."""
        for digest in digests:
            found = self.executables.get(digest_key(digest))
            if found is not None:
                return found
        return None

    def keys_of(self, *, image_id: str | None = None, image_ref: str = "") -> set[bytes]:
        """The digest keys an image is known by: its config digest, a digest in its name, and
        the key its name is registered under (the manifest digest)."""
        keys = {digest_key(image_id)} if image_id else set()
        if image_ref:
            name = split_image_name(image_ref)
            if name.digest:
                keys.add(digest_key(name.digest))
            else:
                registered = self.names.get(_name_key(image_ref))
                if registered is not None:
                    keys.add(registered)
        return keys

    def executables_of(self, *digests: str) -> tuple[str, ...] | None:
        """The paths of the image's executables (None: unknown)."""
        found = self.inventory_of(*digests)
        return None if found is None else tuple(found)


def build_image_index(records: Iterable[ImageRecord]) -> ImageIndex:
    states: dict[bytes, ImageStateKind] = {}
    reasons: dict[bytes, str] = {}
    names: dict[str, bytes] = {}
    executables: dict[bytes, Inventory] = {}
    for record in records:
        keys = [digest_key(d) for d in (record.manifest_digest, record.config_digest) if d]
        if not keys:
            continue
        inventory = record.inventory() if record.executables else None
        for key in keys:
            states[key] = record.status
            if record.reason and record.status is ImageStateKind.REGISTERED_DISALLOWED:
                reasons[key] = record.reason
            if inventory:
                executables[key] = inventory
        for name in record.names:
            names[_name_key(name)] = keys[0]
    return ImageIndex(states=states, reasons=reasons, names=names, executables=executables)


@dataclass(frozen=True, slots=True, order=True)
class ProfilingTarget:
    """An active profiling session as enforcers see it: record what the containers of
    `repository` (and only of the image `digest`, when set) do, for `profile`."""

    id: str
    profile: str
    repository: str
    """As `core.profile.repository_of` spells it ("localhost:5000/shop/api")."""
    digest: str | None = None

    def covers(self, keys: Iterable[bytes]) -> bool:
        """Whether an image known by these digest keys (`digest_key`) is the session's image."""
        return self.digest is None or digest_key(self.digest) in set(keys)


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    version: str
    """A hash of the content (not of `generated_at`): the ETag enforcers poll with."""
    generated_at: datetime
    group: EnforcerGroupInfo
    policies: tuple[RuntimePolicy, ...] = ()
    services: tuple[Service, ...] = ()
    images: ImageIndex = field(default_factory=ImageIndex)
    profiles: Mapping[str, ImageProfile] = field(default_factory=dict)
    """Image repository -> the runtime profile applied to its images."""
    profiling: tuple[ProfilingTarget, ...] = ()
    """The active profiling sessions."""

    def profile_for(self, repository: str) -> ImageProfile | None:
        return self.profiles.get(repository)

    def sessions_for(
        self, repository: str, *, image_id: str | None = None, image_ref: str = ""
    ) -> tuple[ProfilingTarget, ...]:
        """The active sessions recording a container of `repository` started from `image_id`
        (config digest) by the name `image_ref`; a session naming a digest (the manifest digest
        of a registered image, as a console records it) takes the container when any identity of
        the container's image is that digest."""
        found = tuple(t for t in self.profiling if t.repository == repository)
        if not any(t.digest for t in found):
            return found
        keys = self.images.keys_of(image_id=image_id, image_ref=image_ref)
        return tuple(t for t in found if t.covers(keys))

    def image_state(
        self,
        *,
        image_id: str | None = None,
        manifest_digest: str | None = None,
        image_ref: str | None = None,
    ) -> ImageState:
        return self.images.lookup(
            image_id=image_id, manifest_digest=manifest_digest, image_ref=image_ref
        )


# ---------------------------------------------------------------------------------------------
# JSON of policies and services


def _scope_to_json(scope: RuntimeScope) -> dict[str, Any]:
    return {
        "enforcer_groups": list(scope.enforcer_groups),
        "hosts": list(scope.hosts),
        "namespaces": list(scope.namespaces),
        "container_labels": [{"key": r.key, "value": r.value} for r in scope.container_labels],
        "images": list(scope.images),
        "registries": list(scope.registries),
        "repositories": list(scope.repositories),
        "services": list(scope.services),
    }


def _controls_to_json(controls: RuntimeControls) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in RuntimeControls.__dataclass_fields__:
        value = getattr(controls, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    return out


def runtime_policy_to_json(policy: RuntimePolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "mode": policy.mode.value,
        "enabled": policy.enabled,
        "version": policy.version,
        "is_default": policy.is_default,
        "enforce_after": policy.enforce_after.isoformat() if policy.enforce_after else None,
        "scope": _scope_to_json(policy.scope),
        "controls": _controls_to_json(policy.controls),
    }


def service_to_json(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "priority": service.priority,
        "description": service.description,
        "rules": [
            {
                "labels": [{"key": r.key, "value": r.value} for r in rule.labels],
                "namespaces": list(rule.namespaces),
                "images": list(rule.images),
            }
            for rule in service.rules
        ],
    }


class _Reader:
    """Typed access to a hostile JSON object; every error names the field's path."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise BundleError(f"{where}: expected an object, got {type(data).__name__}")
        self.data: dict[str, Any] = data
        self.where = where

    def _get(self, key: str, default: object) -> object:
        return self.data.get(key, default)

    def fail(self, key: str, what: str) -> BundleError:
        return BundleError(f"{self.where}.{key}: {what}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, "expected a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, None)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, "expected a string or null")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def integer(self, key: str, default: int | None = None) -> int:
        value = self._get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, "expected an integer")
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "expected a list of strings")
        return tuple(value)

    def objects(self, key: str) -> list[_Reader]:
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "expected a list")
        return [_Reader(item, f"{self.where}.{key}[{i}]") for i, item in enumerate(value)]

    def object(self, key: str) -> _Reader:
        return _Reader(self._get(key, {}), f"{self.where}.{key}")

    def enum(self, key: str, cls: type[_E], default: _E) -> _E:
        value = self._get(key, default.value)
        try:
            return cls(str(value))
        except ValueError as exc:
            allowed = ", ".join(m.value for m in cls)
            raise self.fail(key, f"{value!r} is not one of {allowed}") from exc

    def time(self, key: str) -> datetime | None:
        value = self.opt_text(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise self.fail(key, f"{value!r} is not an ISO 8601 time") from exc
        if parsed.tzinfo is None:
            raise self.fail(key, "must carry a time zone")
        return parsed


def _labels(reader: _Reader, key: str) -> tuple[LabelRule, ...]:
    return tuple(
        LabelRule(key=r.text("key"), value=r.opt_text("value")) for r in reader.objects(key)
    )


def _scope_from(reader: _Reader) -> RuntimeScope:
    return RuntimeScope(
        enforcer_groups=reader.strs("enforcer_groups"),
        hosts=reader.strs("hosts"),
        namespaces=reader.strs("namespaces"),
        container_labels=_labels(reader, "container_labels"),
        images=reader.strs("images"),
        registries=reader.strs("registries"),
        repositories=reader.strs("repositories"),
        services=reader.strs("services"),
    )


def _controls_from(reader: _Reader) -> RuntimeControls:
    unknown = set(reader.data) - set(RuntimeControls.__dataclass_fields__)
    if unknown:
        raise reader.fail(sorted(unknown)[0], "unknown control")
    values: dict[str, Any] = {}
    for name, spec in RuntimeControls.__dataclass_fields__.items():
        if name not in reader.data:
            continue
        values[name] = reader.flag(name) if spec.default is False else reader.strs(name)
    return RuntimeControls(**values)


def runtime_policy_from_json(data: object, where: str = "policy") -> RuntimePolicy:
    reader = _Reader(data, where)
    return RuntimePolicy(
        id=RuntimePolicyId(reader.text("id")),
        name=reader.text("name"),
        description=reader.text("description", ""),
        mode=reader.enum("mode", Mode, Mode.AUDIT),
        enabled=reader.flag("enabled", True),
        version=reader.integer("version", 1),
        is_default=reader.flag("is_default", False),
        enforce_after=reader.time("enforce_after"),
        scope=_scope_from(reader.object("scope")),
        controls=_controls_from(reader.object("controls")),
    )


def service_from_json(data: object, where: str = "service") -> Service:
    reader = _Reader(data, where)
    rules = tuple(
        ServiceRule(
            labels=_labels(rule, "labels"),
            namespaces=rule.strs("namespaces"),
            images=rule.strs("images"),
        )
        for rule in reader.objects("rules")
    )
    return Service(
        name=reader.text("name"),
        priority=reader.integer("priority", 100),
        description=reader.text("description", ""),
        rules=rules,
    )


# ---------------------------------------------------------------------------------------------
# JSON of the image index and the bundle

_KIND_FIELDS: tuple[tuple[str, ImageStateKind], ...] = (
    ("approved", ImageStateKind.REGISTERED_APPROVED),
    ("disallowed", ImageStateKind.REGISTERED_DISALLOWED),
    ("retired", ImageStateKind.RETIRED),
)


def _index_to_json(index: ImageIndex) -> dict[str, Any]:
    """Keys as base64 blobs per state; names, reasons and executables point at a key by its
    position in approved + disallowed + retired (a few digits instead of 32 hex characters).
    An inventory is `{"keys", "paths", "sha256"}`: its hash prefixes one base64 blob in the
    order of `paths` (16 zero bytes: not known), shared by every key of the same inventory."""
    out: dict[str, Any] = {"key_bytes": KEY_BYTES}
    order: list[bytes] = []
    for name, kind in _KIND_FIELDS:
        keys = sorted(k for k, v in index.states.items() if v is kind)
        out[name] = base64.b64encode(b"".join(keys)).decode("ascii")
        order += keys
    position = {key: i for i, key in enumerate(order)}
    out["reasons"] = sorted([position[k], r] for k, r in index.reasons.items() if k in position)
    out["names"] = {n: position[k] for n, k in sorted(index.names.items()) if k in position}
    groups: dict[tuple[tuple[str, str | None], ...], list[int]] = {}
    for key, inventory in index.executables.items():
        if key in position:
            groups.setdefault(tuple(inventory.items()), []).append(position[key])
    out["executables"] = sorted(
        (_inventory_to_json(items, keys) for items, keys in groups.items()),
        key=lambda g: g["keys"],
    )
    return out


def _inventory_to_json(
    items: tuple[tuple[str, str | None], ...], keys: list[int]
) -> dict[str, Any]:
    prefixes = (hash_prefix(sha) for _, sha in items)
    blob = b"".join(bytes.fromhex(p) if p else _NO_HASH for p in prefixes)
    return {
        "keys": sorted(keys),
        "paths": [path for path, _ in items],
        "sha256": base64.b64encode(blob).decode("ascii"),
    }


def _inventory_from(group: _Reader) -> Inventory:
    paths = group.strs("paths")
    text = group.text("sha256", "")
    try:
        blob = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise group.fail("sha256", "not base64") from exc
    if len(blob) != HASH_BYTES * len(paths):
        raise group.fail(
            "sha256", f"expected {HASH_BYTES} bytes for each of the {len(paths)} paths"
        )
    hashes = [blob[i : i + HASH_BYTES] for i in range(0, len(blob), HASH_BYTES)]
    return {
        path: (h.hex() if h != _NO_HASH else None) for path, h in zip(paths, hashes, strict=True)
    }


def _split_blob(reader: _Reader, name: str) -> list[bytes]:
    text = reader.text(name, "")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise reader.fail(name, "not base64") from exc
    if len(raw) % KEY_BYTES:
        raise reader.fail(name, f"length is not a multiple of {KEY_BYTES} bytes")
    return [raw[i : i + KEY_BYTES] for i in range(0, len(raw), KEY_BYTES)]


def _key_at(order: list[bytes], value: object, where: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < len(order):
        raise BundleError(f"{where}: {value!r} is not the position of a key (0..{len(order) - 1})")
    return order[value]


def _index_from(reader: _Reader) -> ImageIndex:
    if reader.integer("key_bytes", KEY_BYTES) != KEY_BYTES:
        raise reader.fail("key_bytes", f"expected {KEY_BYTES}")
    states: dict[bytes, ImageStateKind] = {}
    order: list[bytes] = []
    for name, kind in _KIND_FIELDS:
        keys = _split_blob(reader, name)
        states.update(dict.fromkeys(keys, kind))
        order += keys
    reasons: dict[bytes, str] = {}
    for i, pair in enumerate(reader.data.get("reasons", [])):
        where = f"{reader.where}.reasons[{i}]"
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
            raise BundleError(f"{where}: expected [position, reason]")
        reasons[_key_at(order, pair[0], where)] = pair[1]
    names = {
        str(n): _key_at(order, k, f"{reader.where}.names[{n!r}]")
        for n, k in reader.object("names").data.items()
    }
    executables: dict[bytes, Inventory] = {}
    for group in reader.objects("executables"):
        paths = _inventory_from(group)
        raw_keys = group.data.get("keys", [])
        if not isinstance(raw_keys, list):
            raise group.fail("keys", "expected a list of key positions")
        for i, value in enumerate(raw_keys):
            executables[_key_at(order, value, f"{group.where}.keys[{i}]")] = paths
    return ImageIndex(states=states, reasons=reasons, names=names, executables=executables)


# ---------------------------------------------------------------------------------------------
# JSON of the profiles and the profiling sessions


def _profiles_to_json(profiles: Mapping[str, ImageProfile]) -> list[dict[str, Any]]:
    return [
        {
            "repository": repository,
            "name": profile.name,
            "mode": Mode(profile.mode).value,
            "version": profile.version,
            "executables": dict(sorted(profile.executables.items())),
        }
        for repository, profile in sorted(profiles.items())
    ]


def _profiling_to_json(targets: Iterable[ProfilingTarget]) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "profile": t.profile, "repository": t.repository, "digest": t.digest}
        for t in sorted(targets)
    ]


def _executable_path(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_PROFILE_PATH:
        raise BundleError(
            f"{where}: {str(value)[:80]!r} is not an absolute path of at most "
            f"{MAX_PROFILE_PATH} characters"
        )
    return value


def _profile_hash(value: object, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise BundleError(f"{where}: expected null or a sha256 as 64 lowercase hex characters")
    return value


def _profile_from(r: _Reader) -> tuple[str, ImageProfile]:
    repository = r.text("repository")
    name = r.text("name")
    for key, value in (("repository", repository), ("name", name)):
        if not value.strip():
            raise r.fail(key, "must not be empty")
    version = r.integer("version", 1)
    if version < 1:
        raise r.fail("version", "expected a positive integer")
    executables = r.object("executables")
    return repository, ImageProfile(
        name=name,
        mode=r.enum("mode", Mode, Mode.AUDIT),
        version=version,
        executables={
            _executable_path(path, f"{executables.where}[{str(path)[:80]!r}]"): _profile_hash(
                sha, f"{executables.where}[{path!r}]"
            )
            for path, sha in executables.data.items()
        },
    )


def _profiles_from(reader: _Reader) -> dict[str, ImageProfile]:
    profiles: dict[str, ImageProfile] = {}
    for item in reader.objects("profiles"):
        repository, profile = _profile_from(item)
        if repository in profiles:
            raise item.fail("repository", f"{repository!r} has a profile already")
        profiles[repository] = profile
    return profiles


def _profiling_from(reader: _Reader) -> tuple[ProfilingTarget, ...]:
    targets: dict[str, ProfilingTarget] = {}
    for item in reader.objects("profiling"):
        target = ProfilingTarget(
            id=item.text("id"),
            profile=item.text("profile"),
            repository=item.text("repository"),
            digest=item.opt_text("digest"),
        )
        for key in ("id", "profile", "repository"):
            if not getattr(target, key).strip():
                raise item.fail(key, "must not be empty")
        if target.id in targets:
            raise item.fail("id", f"session {target.id!r} is listed twice")
        targets[target.id] = target
    return tuple(sorted(targets.values()))


def _normal_profile(profile: ImageProfile) -> ImageProfile:
    """Hashes as the JSON keeps them (lowercase hex without "sha256:"), so a bundle and its
    parsed JSON are equal."""
    executables = {
        path: (sha.strip().lower().removeprefix("sha256:") if sha else None)
        for path, sha in sorted(profile.executables.items())
    }
    return ImageProfile(
        name=profile.name, mode=Mode(profile.mode), executables=executables, version=profile.version
    )


def _content(
    group: EnforcerGroupInfo,
    policies: Iterable[RuntimePolicy],
    services: Iterable[Service],
    images: ImageIndex,
    profiles: Mapping[str, ImageProfile],
    profiling: Iterable[ProfilingTarget],
) -> dict[str, Any]:
    return {
        "format": BUNDLE_FORMAT,
        "group": {
            "name": group.name,
            "mode": group.mode.value,
            "admission_enabled": group.admission_enabled,
            "fail_mode": group.fail_mode.value,
            "audit_all": group.audit_all,
        },
        "policies": [runtime_policy_to_json(p) for p in policies],
        "services": [service_to_json(s) for s in services],
        "images": _index_to_json(images),
        "profiles": _profiles_to_json(profiles),
        "profiling": _profiling_to_json(profiling),
    }


def _canonical(content: Mapping[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _version_of(canonical: bytes) -> str:
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def build_bundle(
    *,
    group: EnforcerGroupInfo,
    policies: Iterable[RuntimePolicy],
    services: Iterable[Service],
    images: ImageIndex,
    now: datetime,
    profiles: Mapping[str, ImageProfile] | None = None,
    profiling: Iterable[ProfilingTarget] = (),
) -> PolicyBundle:
    """A bundle whose version is the hash of its content (the same content, the same version).
    `profiles`: image repository -> its applied runtime profile; `profiling`: active sessions."""
    policies, services = tuple(policies), tuple(services)
    applied = {repo: _normal_profile(p) for repo, p in sorted((profiles or {}).items())}
    targets = tuple(sorted(set(profiling)))
    content = _content(group, policies, services, images, applied, targets)
    return PolicyBundle(
        version=_version_of(_canonical(content)),
        generated_at=now,
        group=group,
        policies=policies,
        services=services,
        images=images,
        profiles=applied,
        profiling=targets,
    )


def bundle_to_json(bundle: PolicyBundle) -> bytes:
    content = _content(
        bundle.group,
        bundle.policies,
        bundle.services,
        bundle.images,
        bundle.profiles,
        bundle.profiling,
    )
    content["version"] = bundle.version
    content["generated_at"] = bundle.generated_at.isoformat()
    return _canonical(content)


def bundle_from_json(data: bytes | str) -> PolicyBundle:
    """Parse a bundle; malformed JSON, a wrong field or a version not matching the content is a
    BundleError naming the problem (an enforcer then keeps its previous bundle)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError(f"bundle: not JSON ({exc})") from exc
    reader = _Reader(document, "bundle")
    found = reader.integer("format")
    if found != BUNDLE_FORMAT:
        age = "older than" if found < BUNDLE_FORMAT else "not"
        raise reader.fail(
            "format",
            f"unsupported bundle format {found}, {age} the format this enforcer reads "
            f"({BUNDLE_FORMAT}): fetch the bundle again from a console of this version",
        )
    version = reader.text("version")
    generated_at = reader.time("generated_at")
    if generated_at is None:
        raise reader.fail("generated_at", "missing")
    content = {k: v for k, v in document.items() if k not in ("version", "generated_at")}
    if _version_of(_canonical(content)) != version:
        raise reader.fail("version", "does not match the bundle's content (damaged or altered)")
    g = reader.object("group")
    group = EnforcerGroupInfo(
        name=g.text("name"),
        mode=g.enum("mode", Mode, Mode.AUDIT),
        admission_enabled=g.flag("admission_enabled", True),
        fail_mode=g.enum("fail_mode", FailMode, FailMode.OPEN),
        audit_all=g.flag("audit_all", False),
    )
    policies = tuple(runtime_policy_from_json(p.data, p.where) for p in reader.objects("policies"))
    services = tuple(service_from_json(s.data, s.where) for s in reader.objects("services"))
    return PolicyBundle(
        version=version,
        generated_at=generated_at,
        group=group,
        policies=policies,
        services=services,
        images=_index_from(reader.object("images")),
        profiles=_profiles_from(reader),
        profiling=_profiling_from(reader),
    )
