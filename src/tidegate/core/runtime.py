"""Runtime policies and the one decision every container start goes through.

Owns: the runtime policy model (scope, controls, the default global policy), services (named
groups of workloads, usable as scopes), the container request an admission point builds (OCI hook,
Kubernetes admission), the image's state as the inventory knows it, and `decide`, which evaluates
every applicable policy (the default one plus scoped layers) and turns each violated control into
its own `Violation` carrying the `ModeDecision` of DESIGN.md's mode rule. Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import NewType

from tidegate.core.modes import Action, ModeDecision
from tidegate.core.modes import decide as decide_mode
from tidegate.core.policy import LabelRule, Mode

__all__ = [
    "DEFAULT_POLICY_ID",
    "DEFAULT_VOLUME_BLACKLIST",
    "AdmissionDecision",
    "ContainerRequest",
    "ImageName",
    "ImageState",
    "ImageStateKind",
    "Mount",
    "RuntimeControl",
    "RuntimeControls",
    "RuntimePolicy",
    "RuntimePolicyId",
    "RuntimeScope",
    "Service",
    "ServiceRule",
    "Violation",
    "applicable_policies",
    "decide",
    "default_runtime_policy",
    "normalize_capability",
    "resolve_service",
    "split_image_name",
]

RuntimePolicyId = NewType("RuntimePolicyId", str)
DEFAULT_POLICY_ID = RuntimePolicyId("default")

DEFAULT_VOLUME_BLACKLIST: tuple[str, ...] = (
    "/",
    "/etc",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/podman/podman.sock",
    "/proc",
    "/sys",
    "/boot",
    "/dev",
    "/root",
    "/home",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containers",
    "/var/lib/containerd",
    "/etc/kubernetes",
)
"""Host paths whose bind mount hands a container the host (or its container engine)."""


class RuntimeControl(StrEnum):
    """The name of each control, as violations, events and deny messages spell it."""

    UNREGISTERED_IMAGE = "block_unregistered"
    DISALLOWED_IMAGE = "block_disallowed"
    ALLOWED_REGISTRIES = "allowed_registries"
    VOLUME_BLACKLIST = "volume_blacklist"
    PRIVILEGED = "block_privileged"
    HOST_NETWORK = "block_host_network"
    HOST_PID = "block_host_pid"
    HOST_IPC = "block_host_ipc"
    ROOT_USER = "block_root"
    CAPABILITIES = "blocked_capabilities"
    NO_NEW_PRIVILEGES = "require_no_new_privileges"
    SECCOMP_PROFILE = "seccomp_profile"
    """Engine-level: on/off only, no audit form."""
    DRIFT_PREVENTION = "drift_prevention"
    EXECUTABLE_BLOCKLIST = "executable_blocklist"
    ALLOWED_EXECUTABLES = "allowed_executables"


ENGINE_LEVEL_CONTROLS: frozenset[RuntimeControl] = frozenset({RuntimeControl.SECCOMP_PROFILE})


@dataclass(frozen=True, slots=True)
class RuntimeScope:
    """Which containers a runtime policy covers. Empty = any; AND across kinds, OR within one."""

    enforcer_groups: tuple[str, ...] = ()
    """Globs over enforcer group names."""
    hosts: tuple[str, ...] = ()
    """Globs over host names."""
    namespaces: tuple[str, ...] = ()
    """Globs over Kubernetes namespaces (a container without a namespace matches none)."""
    container_labels: tuple[LabelRule, ...] = ()
    images: tuple[str, ...] = ()
    """Globs over image names ("registry/repo:tag", "registry/repo", "repo", as started)."""
    registries: tuple[str, ...] = ()
    """Globs over registry hosts."""
    repositories: tuple[str, ...] = ()
    """Globs over repository paths ("team-a/*", "library/nginx")."""
    services: tuple[str, ...] = ()
    """Service names: the container's service (services resolved with priority) must be one."""

    @property
    def is_global(self) -> bool:
        return not (
            self.enforcer_groups
            or self.hosts
            or self.namespaces
            or self.container_labels
            or self.images
            or self.registries
            or self.repositories
            or self.services
        )


@dataclass(frozen=True, slots=True)
class RuntimeControls:
    """Every control is off (False / empty) unless set."""

    block_unregistered: bool = False
    """The image is unknown to the console by every identity it was started with, or retired."""
    block_disallowed: bool = False
    """The inventory holds the image as DISALLOWED by its assurance policies."""
    allowed_registries: tuple[str, ...] = ()
    """Globs over the registry host of the image as started; empty: off."""
    volume_blacklist: tuple[str, ...] = ()
    """Host paths and globs that no bind mount may name (a mount of an ancestor also counts)."""
    block_privileged: bool = False
    block_host_network: bool = False
    block_host_pid: bool = False
    block_host_ipc: bool = False
    block_root: bool = False
    """The container's user is uid 0, or it cannot be resolved."""
    blocked_capabilities: tuple[str, ...] = ()
    """Capabilities that may not be added ("NET_ADMIN"); "ALL": any added capability."""
    require_no_new_privileges: bool = False
    seccomp_profile: bool = False
    """ENGINE-LEVEL: the container must run under a seccomp profile. On/off only: no audit form."""
    drift_prevention: bool = False
    """Enforced by the runtime monitor: exec of a file that was not in the image."""
    executable_blocklist: tuple[str, ...] = ()
    """Enforced by the runtime monitor: globs over executable paths that may not run."""
    allowed_executables: tuple[str, ...] = ()
    """Enforced by the runtime monitor: when set, only these (globs) may run."""


@dataclass(frozen=True, slots=True)
class RuntimePolicy:
    id: RuntimePolicyId
    name: str
    mode: Mode = Mode.AUDIT
    scope: RuntimeScope = field(default_factory=RuntimeScope)
    controls: RuntimeControls = field(default_factory=RuntimeControls)
    enabled: bool = True
    version: int = 1
    is_default: bool = False
    """The default global policy: covers every container an enforcer group sees."""
    description: str = ""
    enforce_after: datetime | None = None
    """From this time on the policy enforces even if `mode` is audit (graduated rollout)."""

    def mode_at(self, now: datetime) -> Mode:
        if self.mode == Mode.ENFORCE:
            return Mode.ENFORCE
        if self.enforce_after is not None and now >= self.enforce_after:
            return Mode.ENFORCE
        return Mode.AUDIT


def default_runtime_policy() -> RuntimePolicy:
    """The policy every console ships with: global, audit, volume blacklist and drift prevention."""
    return RuntimePolicy(
        id=DEFAULT_POLICY_ID,
        name="Default runtime policy",
        mode=Mode.AUDIT,
        controls=RuntimeControls(volume_blacklist=DEFAULT_VOLUME_BLACKLIST, drift_prevention=True),
        is_default=True,
        description="Covers every container; blacklisted host mounts and drift are detected.",
    )


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """One membership rule: all its non-empty parts must hold (AND); a service's rules are OR."""

    labels: tuple[LabelRule, ...] = ()
    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    """Globs over image names, as in `RuntimeScope.images`."""


@dataclass(frozen=True, slots=True)
class Service:
    """A named group of workloads. When several services match, the lowest priority wins."""

    name: str
    priority: int = 100
    """Lower numbers are stronger (1 beats 100); ties go to the name in sort order."""
    rules: tuple[ServiceRule, ...] = ()
    description: str = ""


@dataclass(frozen=True, slots=True)
class Mount:
    source: str
    """The host path (bind mounts) or the file system name (proc, tmpfs ...)."""
    destination: str
    type: str = "bind"
    options: tuple[str, ...] = ()

    @property
    def is_bind(self) -> bool:
        return self.type == "bind" or "bind" in self.options or "rbind" in self.options


@dataclass(frozen=True, slots=True)
class ContainerRequest:
    """A container about to start, as an admission point sees it."""

    container_id: str
    name: str
    image_ref: str
    """The image name it was started with ("docker.io/library/nginx:1.27", "nginx", a digest)."""
    image_id: str | None = None
    """The config digest ("image ID") the runtime reports."""
    manifest_digest: str | None = None
    host: str = ""
    enforcer_group: str = ""
    namespace: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    user_uid: int | None = None
    """None: the user could not be resolved (counts as root for `block_root`)."""
    user_gid: int | None = None
    privileged: bool = False
    added_capabilities: tuple[str, ...] = ()
    """Capabilities beyond the engine's default set."""
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    no_new_privileges: bool = False
    seccomp_unconfined: bool = False
    """The container runs without any seccomp profile."""
    args: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    """Names only: environment values may hold secrets and never leave the host."""


class ImageStateKind(StrEnum):
    REGISTERED_APPROVED = "registered_approved"
    """Known to the console and not disallowed (approved, or registered and not scanned yet)."""
    REGISTERED_DISALLOWED = "registered_disallowed"
    RETIRED = "retired"
    """Known but retired from the inventory: treated as unregistered."""
    UNREGISTERED = "unregistered"


@dataclass(frozen=True, slots=True)
class ImageState:
    """What the inventory knows of the image a container starts from."""

    kind: ImageStateKind
    reason: str = ""
    """Why (the disallowing policies, "matched by config digest", ...)."""
    digest: str | None = None
    """The inventory's identity of the image, when known."""

    @property
    def registered(self) -> bool:
        return self.kind in (
            ImageStateKind.REGISTERED_APPROVED,
            ImageStateKind.REGISTERED_DISALLOWED,
        )


@dataclass(frozen=True, slots=True)
class ImageName:
    """An image name split the way registries and docker read it."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`."""
        return f"{self.registry}/{self.repository}"

    def forms(self) -> tuple[str, ...]:
        """Every spelling a scope glob may be written against."""
        out = [self.name, self.repository]
        if self.tag:
            out += [f"{self.name}:{self.tag}", f"{self.repository}:{self.tag}"]
        if self.digest:
            out.append(f"{self.name}@{self.digest}")
        return tuple(out)


def split_image_name(ref: str) -> ImageName:
    """Split an image name into registry, repository, tag, digest (docker's defaults).

    `nginx` -> docker.io/library/nginx; `team/app:1` -> docker.io/team/app:1;
    `reg:5000/team/app@sha256:..` keeps its registry. Never raises: a hostile string is kept whole.
    """
    rest, digest = ref, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
    first, _, remainder = rest.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, remainder
    else:
        registry, repository = "docker.io", rest
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    if registry == "docker.io" and "/" not in repository:
        repository = f"library/{repository}"
    return ImageName(registry=registry, repository=repository, tag=tag, digest=digest)


@dataclass(frozen=True, slots=True)
class Violation:
    """One violated control of one policy, with the modes that decide what happens to it."""

    policy_id: str
    policy_name: str
    policy_version: int
    control: RuntimeControl
    message: str
    decision: ModeDecision
    engine_level: bool = False
    """An on/off control applied by the engine: always effective, whatever the modes."""

    @property
    def blocks(self) -> bool:
        return self.decision.action is Action.BLOCK

    def describe(self) -> str:
        """One line naming the policy and the control (the deny message of the hook/webhook)."""
        return f"runtime policy {self.policy_name!r}, control {self.control}: {self.message}"


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """The outcome of one container start: allowed or not, and every violation behind it."""

    allowed: bool
    violations: tuple[Violation, ...] = ()
    policies: tuple[str, ...] = ()
    """Names of the policies that applied (default first)."""
    service: str | None = None
    """The container's service, when one matched."""
    group_mode: Mode = Mode.AUDIT

    @property
    def blocking(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.blocks)

    @property
    def detections(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.decision.action is Action.DETECT)

    @property
    def message(self) -> str:
        """Why: the blocking violations for a denial, the detections for an allowed start."""
        if not self.allowed:
            return "container start denied: " + "; ".join(v.describe() for v in self.blocking)
        if self.violations:
            return "allowed (audit): " + "; ".join(v.describe() for v in self.detections)
        return "allowed: no runtime policy violated"


# ---------------------------------------------------------------------------------------------
# Scope matching


def _any_glob(patterns: Iterable[str], values: Iterable[str]) -> bool:
    values = tuple(values)
    return any(fnmatchcase(value, pattern) for pattern in patterns for value in values)


def _labels_match(rules: tuple[LabelRule, ...], labels: tuple[tuple[str, str], ...]) -> bool:
    """OR over rules: a label with the rule's key (and a value matching its glob)."""
    return any(
        key == rule.key and (rule.value is None or fnmatchcase(value, rule.value))
        for rule in rules
        for key, value in labels
    )


def _rule_matches(rule: ServiceRule, request: ContainerRequest, image: ImageName) -> bool:
    if not (rule.labels or rule.namespaces or rule.images):
        return False  # an empty rule would swallow every workload: it matches nothing
    if rule.labels and not _labels_match(rule.labels, request.labels):
        return False
    if rule.namespaces and not (
        request.namespace is not None and _any_glob(rule.namespaces, [request.namespace])
    ):
        return False
    return not rule.images or _any_glob(rule.images, (request.image_ref, *image.forms()))


def resolve_service(
    request: ContainerRequest, services: Iterable[Service], image: ImageName | None = None
) -> Service | None:
    """The service a container belongs to: of those whose rules match, the lowest priority."""
    image = image or split_image_name(request.image_ref)
    matching = [s for s in services if any(_rule_matches(r, request, image) for r in s.rules)]
    if not matching:
        return None
    return min(matching, key=lambda s: (s.priority, s.name))


def _scope_matches(
    scope: RuntimeScope, request: ContainerRequest, image: ImageName, service: str | None
) -> bool:
    checks = (
        (scope.enforcer_groups, (request.enforcer_group,)),
        (scope.hosts, (request.host,)),
        (scope.namespaces, (request.namespace,) if request.namespace is not None else ()),
        (scope.images, (request.image_ref, *image.forms())),
        (scope.registries, (image.registry,)),
        (scope.repositories, (image.repository, image.name)),
        (scope.services, (service,) if service is not None else ()),
    )
    if any(patterns and not _any_glob(patterns, values) for patterns, values in checks):
        return False
    return not scope.container_labels or _labels_match(scope.container_labels, request.labels)


def applicable_policies(
    request: ContainerRequest,
    policies: Iterable[RuntimePolicy],
    services: Iterable[Service] = (),
    *,
    image: ImageName | None = None,
    service: Service | None = None,
) -> tuple[RuntimePolicy, ...]:
    """The enabled policies covering the request: the default policy first, then by name.

    `image` and `service` are the request's, when the caller has resolved them already."""
    image = image or split_image_name(request.image_ref)
    service = service or resolve_service(request, services, image)
    name = service.name if service is not None else None
    chosen = [
        p
        for p in policies
        if p.enabled and (p.is_default or _scope_matches(p.scope, request, image, name))
    ]
    return tuple(sorted(chosen, key=lambda p: (not p.is_default, p.name, p.id)))


# ---------------------------------------------------------------------------------------------
# Controls: each returns (control, message) pairs for what the request violates.

_Found = list[tuple[RuntimeControl, str]]


def _image_controls(controls: RuntimeControls, state: ImageState, image: ImageName) -> _Found:
    found: _Found = []
    if controls.block_unregistered and not state.registered:
        why = "is retired" if state.kind is ImageStateKind.RETIRED else "is not registered"
        detail = f" ({state.reason})" if state.reason else ""
        found.append((RuntimeControl.UNREGISTERED_IMAGE, f"image {why}{detail}"))
    if controls.block_disallowed and state.kind is ImageStateKind.REGISTERED_DISALLOWED:
        detail = f": {state.reason}" if state.reason else ""
        found.append((RuntimeControl.DISALLOWED_IMAGE, f"image is disallowed{detail}"))
    if controls.allowed_registries and not _any_glob(controls.allowed_registries, [image.registry]):
        found.append(
            (
                RuntimeControl.ALLOWED_REGISTRIES,
                f"registry {image.registry!r} is not one of "
                f"{', '.join(controls.allowed_registries)}",
            )
        )
    return found


def _host_aliases(path: str) -> tuple[str, ...]:
    """The path and its spelling through the /var/run -> /run symlink every distro has."""
    norm = posixpath.normpath("/" + path.lstrip("/")) if path else "/"
    if norm == "/var/run" or norm.startswith("/var/run/"):
        return norm, "/run" + norm[len("/var/run") :]
    if norm == "/run" or norm.startswith("/run/"):
        return norm, "/var/run" + norm[len("/run") :]
    return (norm,)


@dataclass(frozen=True, slots=True)
class _Blacklist:
    literals: dict[str, str]
    """Normalized literal entry -> the entry as written."""
    ancestors: dict[str, str]
    """Every directory above a literal entry -> that entry (mounting /var exposes /var/run/...)."""
    globs: tuple[str, ...]


@lru_cache(maxsize=256)
def _compile_blacklist(entries: tuple[str, ...]) -> _Blacklist:
    """Compiled once per list: each mount then costs a few set probes (decisions are hot)."""
    literals: dict[str, str] = {}
    ancestors: dict[str, str] = {}
    globs: list[str] = []
    for entry in entries:
        if any(c in entry for c in "*?["):
            globs.append(entry)
            continue
        norm = posixpath.normpath(entry) if entry.startswith("/") else entry
        literals.setdefault(norm, entry)
        parent = posixpath.dirname(norm)
        while parent != norm:
            ancestors.setdefault(parent, entry)
            norm, parent = parent, posixpath.dirname(parent)
    return _Blacklist(literals=literals, ancestors=ancestors, globs=tuple(globs))


def blacklisted_mount(source: str, blacklist: Iterable[str]) -> str | None:
    """The blacklist entry a bind source hits: equal to a literal entry, a directory holding
    one, or matching a glob (`*` crosses `/`). None when the source is allowed."""
    compiled = _compile_blacklist(tuple(blacklist))
    for src in _host_aliases(source):
        hit = compiled.literals.get(src) or compiled.ancestors.get(src)
        if hit is not None:
            return hit
        for pattern in compiled.globs:
            if fnmatchcase(src, pattern):
                return pattern
    return None


def _mount_controls(controls: RuntimeControls, request: ContainerRequest) -> _Found:
    if not controls.volume_blacklist:
        return []
    hits = []
    for mount in request.mounts:
        if not mount.is_bind:
            continue
        entry = blacklisted_mount(mount.source, controls.volume_blacklist)
        if entry is not None:
            hits.append(f"{mount.source} -> {mount.destination} (blacklisted: {entry})")
    if not hits:
        return []
    return [(RuntimeControl.VOLUME_BLACKLIST, "host mount " + "; ".join(hits))]


def normalize_capability(name: str) -> str:
    """`cap_net_admin`, `CAP_NET_ADMIN`, `net_admin` -> `NET_ADMIN`."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def _privilege_controls(controls: RuntimeControls, request: ContainerRequest) -> _Found:
    found: _Found = []
    flags = (
        (controls.block_privileged, request.privileged, RuntimeControl.PRIVILEGED, "privileged"),
        (
            controls.block_host_network,
            request.host_network,
            RuntimeControl.HOST_NETWORK,
            "shares the host's network namespace",
        ),
        (
            controls.block_host_pid,
            request.host_pid,
            RuntimeControl.HOST_PID,
            "shares the host's PID namespace",
        ),
        (
            controls.block_host_ipc,
            request.host_ipc,
            RuntimeControl.HOST_IPC,
            "shares the host's IPC namespace",
        ),
    )
    found += [(control, f"container {text}") for on, hit, control, text in flags if on and hit]
    if controls.block_root and (request.user_uid is None or request.user_uid == 0):
        text = "runs as root (uid 0)" if request.user_uid == 0 else "user cannot be resolved"
        found.append((RuntimeControl.ROOT_USER, f"container {text}"))
    if controls.blocked_capabilities:
        blocked = {normalize_capability(c) for c in controls.blocked_capabilities}
        added = sorted({normalize_capability(c) for c in request.added_capabilities})
        hit = added if "ALL" in blocked else [c for c in added if c in blocked]
        if hit:
            found.append((RuntimeControl.CAPABILITIES, f"adds capabilities {', '.join(hit)}"))
    if controls.require_no_new_privileges and not request.no_new_privileges:
        found.append((RuntimeControl.NO_NEW_PRIVILEGES, "no-new-privileges is not set"))
    return found


def _engine_controls(controls: RuntimeControls, request: ContainerRequest) -> _Found:
    if controls.seccomp_profile and request.seccomp_unconfined:
        return [(RuntimeControl.SECCOMP_PROFILE, "container runs without a seccomp profile")]
    return []


def policy_violations(
    policy: RuntimePolicy,
    request: ContainerRequest,
    image_state: ImageState,
    *,
    group_mode: Mode,
    now: datetime,
    image: ImageName | None = None,
) -> tuple[Violation, ...]:
    """Every control of one policy that the request violates, each with its mode decision."""
    controls, image = policy.controls, image or split_image_name(request.image_ref)
    policy_mode = policy.mode_at(now)
    found = [
        *_image_controls(controls, image_state, image),
        *_mount_controls(controls, request),
        *_privilege_controls(controls, request),
    ]
    out = [
        Violation(
            policy_id=policy.id,
            policy_name=policy.name,
            policy_version=policy.version,
            control=control,
            message=message,
            decision=decide_mode(True, policy_mode, group_mode),
        )
        for control, message in found
    ]
    # Engine-level controls have no audit form: applied (and so effective) whatever the modes.
    out += [
        Violation(
            policy_id=policy.id,
            policy_name=policy.name,
            policy_version=policy.version,
            control=control,
            message=message,
            decision=ModeDecision(
                policy_mode=policy_mode,
                point_mode=Mode(group_mode),
                effective_mode=Mode.ENFORCE,
                action=Action.BLOCK,
            ),
            engine_level=True,
        )
        for control, message in _engine_controls(controls, request)
    ]
    return tuple(out)


def decide(
    request: ContainerRequest,
    policies: Iterable[RuntimePolicy],
    image_state: ImageState,
    *,
    group_mode: Mode,
    now: datetime,
    services: Iterable[Service] = (),
) -> AdmissionDecision:
    """Evaluate every applicable policy; block only what policy AND group enforce (DESIGN.md)."""
    image = split_image_name(request.image_ref)  # parsed once: decisions are on the hot path
    service = resolve_service(request, services, image)
    chosen = applicable_policies(request, policies, image=image, service=service)
    violations = tuple(
        v
        for policy in chosen
        for v in policy_violations(
            policy, request, image_state, group_mode=group_mode, now=now, image=image
        )
    )
    return AdmissionDecision(
        allowed=not any(v.blocks for v in violations),
        violations=violations,
        policies=tuple(p.name for p in chosen),
        service=service.name if service is not None else None,
        group_mode=Mode(group_mode),
    )
