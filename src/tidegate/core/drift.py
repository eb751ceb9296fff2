"""The runtime monitor's decision: may this exec inside a container go ahead?

Owns: `ExecRequest` (one exec as the monitor saw it), `ImageProfile` (the executables an image's
learned profile allows), and `decide_exec`, which checks every control the runtime policies in
scope (and the image's profile) put on execs, each violated control its own `ExecViolation` with
the `ModeDecision` of DESIGN.md's mode rule (denied only when the policy AND the enforcer group
enforce):

- drift prevention: the file was not shipped by the image (not in its executable inventory), or
  it lives in the overlay upper layer (created or changed after the container started), or its
  hash differs from the inventory's;
- executable block list: globs that may not run;
- allowed executables: when set, only these globs may run;
- the image profile: only the executables learned for the image (and with the learned hash).

Hashes are compared on their common length (`same_hash`): the policy bundle carries the first
128 bits of each inventory hash (`core.bundle.hash_prefix`), the monitor the full sha256.

Globs containing "/" match the whole container-relative path; others match the file name
("nc" blocks /usr/bin/nc wherever it lives). Pure: no I/O.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fnmatch import fnmatchcase

from tidegate.core.modes import Action, ModeDecision
from tidegate.core.modes import decide as decide_mode
from tidegate.core.policy import Mode
from tidegate.core.runtime import RuntimeControl, RuntimePolicy

__all__ = [
    "ExecControl",
    "ExecDecision",
    "ExecRequest",
    "ExecViolation",
    "ImageProfile",
    "decide_exec",
    "drift_reason",
    "path_matches",
    "same_hash",
]

MIN_HASH_HEX = 32
"""The shortest hash prefix (hex characters, 128 bits) two hashes are compared on."""

Inventory = Mapping[str, str | None]
"""Container-relative path -> sha256 hex (or its first 32 hex characters, as the policy bundle
carries it) of the image's executable (None: hash not known)."""


class ExecControl(StrEnum):
    """The controls an exec can violate (the first three spelled as `RuntimeControl`)."""

    DRIFT_PREVENTION = RuntimeControl.DRIFT_PREVENTION.value
    EXECUTABLE_BLOCKLIST = RuntimeControl.EXECUTABLE_BLOCKLIST.value
    ALLOWED_EXECUTABLES = RuntimeControl.ALLOWED_EXECUTABLES.value
    PROFILE = "profile"


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """One exec inside a container, as the monitor saw it (the process waits for the answer)."""

    container_id: str
    image_digest: str | None
    """The image's config digest (the runtime's image ID), when known."""
    path: str
    """The executed file, container-relative ("/usr/bin/curl"; a symlink already resolved)."""
    sha256: str | None
    """Hex digest of the file's content (None: not computed in time, or unreadable)."""
    in_upper_layer: bool
    """The file is in the container's overlay upper layer: created or changed after start."""
    pid: int
    """The exec'ing process, as the host sees it."""
    parent_exe: str | None = None
    """The program that calls exec (the process image the exec replaces)."""
    parent_cmdline: tuple[str, ...] = ()
    container_name: str = ""
    image_ref: str = ""
    """The image name the container was started with."""


@dataclass(frozen=True, slots=True)
class ImageProfile:
    """The executables an image's learned runtime profile allows."""

    name: str
    mode: Mode = Mode.AUDIT
    """Profiles are applied in audit mode until someone switches them to enforce."""
    executables: Mapping[str, str | None] = field(default_factory=dict)
    """Path -> sha256 hex seen while learning (None: any content)."""
    version: int = 1


@dataclass(frozen=True, slots=True)
class ExecViolation:
    """One violated control of one policy (or of the profile), with its mode decision."""

    control: ExecControl
    message: str
    decision: ModeDecision
    policy_id: str | None
    """None for the image profile."""
    policy_name: str
    policy_version: int

    @property
    def blocks(self) -> bool:
        return self.decision.action is Action.BLOCK

    def describe(self) -> str:
        owner = "image profile" if self.policy_id is None else "runtime policy"
        return f"{owner} {self.policy_name!r}, control {self.control}: {self.message}"


@dataclass(frozen=True, slots=True)
class ExecDecision:
    """The answer to one exec and every violation behind it."""

    allowed: bool
    violations: tuple[ExecViolation, ...] = ()
    group_mode: Mode = Mode.AUDIT
    notes: tuple[str, ...] = ()
    """What the decision could not check (an image without inventory, a hash not computed)."""

    @property
    def blocking(self) -> tuple[ExecViolation, ...]:
        return tuple(v for v in self.violations if v.blocks)

    @property
    def detections(self) -> tuple[ExecViolation, ...]:
        return tuple(v for v in self.violations if v.decision.action is Action.DETECT)

    @property
    def message(self) -> str:
        if not self.allowed:
            return "exec denied: " + "; ".join(v.describe() for v in self.blocking)
        if self.violations:
            return "exec allowed (audit): " + "; ".join(v.describe() for v in self.detections)
        return "exec allowed"


def same_hash(a: str, b: str) -> bool:
    """Whether two sha256 hex digests (either may be a prefix of at least 128 bits, either may
    carry "sha256:") name the same content; a shorter prefix never matches."""
    a, b = a.lower().removeprefix("sha256:"), b.lower().removeprefix("sha256:")
    n = min(len(a), len(b))
    return n >= MIN_HASH_HEX and a[:n] == b[:n]


def path_matches(path: str, patterns: Iterable[str]) -> str | None:
    """The first glob that names `path` (a glob without "/" is matched against the file name)."""
    name = posixpath.basename(path)
    for pattern in patterns:
        target = path if "/" in pattern else name
        if fnmatchcase(target, pattern):
            return pattern
    return None


def drift_reason(request: ExecRequest, inventory: Inventory | None) -> str | None:
    """Why the exec is drift, or None. Without an inventory only the upper layer can tell."""
    if request.in_upper_layer:
        return f"{request.path} was created or changed after the container started (upper layer)"
    if inventory is None:
        return None
    if request.path not in inventory:
        return f"{request.path} was not shipped by the image"
    shipped = inventory[request.path]
    if (
        shipped is not None
        and request.sha256 is not None
        and not same_hash(shipped, request.sha256)
    ):
        got, want = request.sha256[:12], shipped[:12]
        return (
            f"{request.path}: its hash differs from the image inventory "
            f"(sha256 {got}, image {want})"
        )
    return None


def _policy_findings(
    policy: RuntimePolicy, request: ExecRequest, inventory: Inventory | None
) -> list[tuple[ExecControl, str]]:
    controls, found = policy.controls, []
    if controls.drift_prevention:
        reason = drift_reason(request, inventory)
        if reason is not None:
            found.append((ExecControl.DRIFT_PREVENTION, reason))
    blocked = path_matches(request.path, controls.executable_blocklist)
    if blocked is not None:
        found.append((ExecControl.EXECUTABLE_BLOCKLIST, f"{request.path} is blocked ({blocked})"))
    allowed = controls.allowed_executables
    if allowed and path_matches(request.path, allowed) is None:
        found.append(
            (ExecControl.ALLOWED_EXECUTABLES, f"{request.path} is not an allowed executable")
        )
    return found


def _profile_finding(profile: ImageProfile, request: ExecRequest) -> str | None:
    if request.path not in profile.executables:
        return f"{request.path} is not in the profile"
    learned = profile.executables[request.path]
    if (
        learned is not None
        and request.sha256 is not None
        and not same_hash(learned, request.sha256)
    ):
        got, want = request.sha256[:12], learned[:12]
        return f"{request.path} differs from the profile (sha256 {got}, learned {want})"
    return None


def _notes(
    request: ExecRequest, inventory: Inventory | None, policies: tuple[RuntimePolicy, ...]
) -> tuple[str, ...]:
    notes = []
    if inventory is None and any(p.controls.drift_prevention for p in policies):
        notes.append("no executable inventory for the image: drift judged by the upper layer only")
    if request.sha256 is None:
        notes.append("content hash not computed: hashes not compared")
    return tuple(notes)


def decide_exec(
    request: ExecRequest,
    inventory: Inventory | None,
    policies: Iterable[RuntimePolicy],
    *,
    group_mode: Mode,
    now: datetime,
    profile: ImageProfile | None = None,
) -> ExecDecision:
    """Evaluate the exec against every policy in scope (the caller resolved the scope) and the
    profile; a violation blocks only when its policy (or profile) AND the group enforce."""
    chosen = tuple(p for p in policies if p.enabled)
    violations = [
        ExecViolation(
            control=control,
            message=message,
            decision=decide_mode(True, policy.mode_at(now), group_mode),
            policy_id=policy.id,
            policy_name=policy.name,
            policy_version=policy.version,
        )
        for policy in chosen
        for control, message in _policy_findings(policy, request, inventory)
    ]
    if profile is not None:
        message = _profile_finding(profile, request)
        if message is not None:
            violations.append(
                ExecViolation(
                    control=ExecControl.PROFILE,
                    message=message,
                    decision=decide_mode(True, profile.mode, group_mode),
                    policy_id=None,
                    policy_name=profile.name,
                    policy_version=profile.version,
                )
            )
    return ExecDecision(
        allowed=not any(v.blocks for v in violations),
        violations=tuple(violations),
        group_mode=Mode(group_mode),
        notes=_notes(request, inventory, chosen),
    )
