"""Domain values of a scan: image identity, packages, facts, unknowns, findings.

Everything here is a frozen value. Analyzers produce `FileFindings` for one path; the scan squashes
them into a `Catalogue`; matching adds `Finding`s; the result of a scan is a `ScanResult`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NewType

Digest = NewType("Digest", str)
"""An OCI content digest, "sha256:<64 hex>"."""


class PackageType(StrEnum):
    """Package ecosystems Tidegate catalogues; the values are the purl types."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    MAVEN = "maven"
    GOLANG = "golang"

    @property
    def is_os(self) -> bool:
        return self in (PackageType.DEB, PackageType.APK, PackageType.RPM)


@dataclass(frozen=True, slots=True)
class Location:
    """Where a thing was found."""

    path: str
    """Absolute path in the image (for a jar inside a jar: "/app/a.war!/WEB-INF/lib/b.jar")."""
    layer: str | None = None
    """The diff_id of the layer the file came from (None for a `dir:` root filesystem)."""


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package."""

    name: str
    """The package's own name (binary package name for OS packages; "group:artifact" for Maven)."""
    version: str
    """The full version as its ecosystem writes it (epoch and release included: "1:2.3-4")."""
    type: PackageType
    found_by: str
    """Name of the analyzer that found it."""
    locations: tuple[Location, ...] = ()
    purl: str = ""
    """Package URL; filled by the scan (`core.purl`) when the analyzer leaves it empty."""
    source_name: str | None = None
    """OS packages: the source package (dpkg Source, apk origin, rpm source rpm name)."""
    source_version: str | None = None
    arch: str | None = None
    licenses: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    """Extra ecosystem facts as sorted (key, value) pairs, e.g. ("go_main_module", "true")."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity used to de-duplicate: type, name, version, first location."""
        path = self.locations[0].path if self.locations else ""
        return (self.type.value, self.name, self.version, path)


@dataclass(frozen=True, slots=True)
class OSInfo:
    """The image's distribution, from /etc/os-release or its fallbacks."""

    id: str
    """os-release ID ("debian", "alpine", "rhel", "ubuntu" ...)."""
    version_id: str = ""
    pretty_name: str = ""
    version_codename: str = ""
    id_like: tuple[str, ...] = ()
    source: str = ""
    """The file it was read from."""


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str = ""
    shell: str = ""


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """One line of /etc/group."""

    name: str
    gid: int


@dataclass(frozen=True, slots=True)
class Executable:
    """A regular file with an execute, setuid or setgid bit: the inventory drift prevention uses."""

    path: str
    mode: int
    size: int
    sha256: str
    uid: int = 0
    gid: int = 0
    layer: str | None = None

    @property
    def setuid(self) -> bool:
        return bool(self.mode & 0o4000)

    @property
    def setgid(self) -> bool:
        return bool(self.mode & 0o2000)


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret found in a file. The secret itself is never kept: only where, and which rule."""

    path: str
    rule_id: str
    """Stable rule id, e.g. "private-key", "aws-access-key-id"."""
    title: str
    severity: str
    """"critical" | "high" | "medium" | "low"."""
    line: int | None = None
    layer: str | None = None
    redacted: str = ""
    """A redacted hint (first 4 characters and a mask) that identifies without revealing."""


@dataclass(frozen=True, slots=True)
class Unknown:
    """Something that could not be read: where, and why. The scan goes on without it."""

    where: str
    """A path in the image, a layer digest, or "config"."""
    reason: str
    analyzer: str | None = None
    layer: str | None = None


@dataclass(frozen=True, slots=True)
class FileFindings:
    """What analyzers learnt from one path of one layer (the unit of the layer cache)."""

    analyzer: str
    path: str
    packages: tuple[Package, ...] = ()
    os: OSInfo | None = None
    executable: Executable | None = None
    secrets: tuple[Secret, ...] = ()
    users: tuple[UserEntry, ...] = ()
    groups: tuple[GroupEntry, ...] = ()
    unknowns: tuple[Unknown, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.packages
            or self.os
            or self.executable
            or self.secrets
            or self.users
            or self.groups
            or self.unknowns
        )


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable of the image config."""

    name: str
    value: str
    """The value, or "<redacted>" when it looks like a secret."""
    looks_secret: bool = False
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    created: datetime | None
    created_by: str
    empty_layer: bool = False
    comment: str = ""


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """Facts from the image config, resolved against the image's files where needed."""

    user: str = ""
    """The config's User exactly as written ("", "app", "1000:1000", "nobody:nogroup")."""
    uid: int | None = None
    """Resolved uid; None when the user name is not in the image's /etc/passwd."""
    gid: int | None = None
    runs_as_root: bool | None = None
    """True for uid 0 (an empty User means root); None when it cannot be resolved."""
    labels: tuple[tuple[str, str], ...] = ()
    env: tuple[EnvVar, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = ""
    created: datetime | None = None
    architecture: str = ""
    os: str = ""
    variant: str = ""
    stop_signal: str = ""
    volumes: tuple[str, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    base_image: str | None = None
    """From the OCI annotations/labels `org.opencontainers.image.base.name` when present."""


@dataclass(frozen=True, slots=True)
class LayerInfo:
    digest: str
    """Blob digest as named by the manifest (compressed); the diff_id for `dir:`-less sources."""
    diff_id: str
    """Digest of the uncompressed tar (from the config's rootfs.diff_ids)."""
    size: int
    media_type: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """Identity of the scanned image."""

    reference: str
    """As the user wrote it."""
    transport: str
    """"oci", "oci-archive", "docker-archive", "dir", "docker" (registry)."""
    manifest_digest: str | None = None
    config_digest: str | None = None
    """The image ID container runtimes report."""
    platform: str = ""
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    layers: tuple[LayerInfo, ...] = ()
    media_type: str = ""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Everything the analyzers found in the squashed image."""

    os: OSInfo | None = None
    packages: tuple[Package, ...] = ()
    executables: tuple[Executable, ...] = ()
    secrets: tuple[Secret, ...] = ()
    users: tuple[UserEntry, ...] = ()
    unknowns: tuple[Unknown, ...] = ()


class Severity(StrEnum):
    """Severity of a vulnerability, ordered by `rank`."""

    UNKNOWN = "unknown"
    NEGLIGIBLE = "negligible"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class FixState(StrEnum):
    """Where a vulnerable package stands with respect to a fix."""

    FIXED = "fixed"
    """A fixed version exists (`Finding.fixed_versions`)."""
    AFFECTED = "affected"
    """No fix is available yet."""
    WONT_FIX = "wont-fix"
    """The distribution decided not to fix it (Debian "ignored", end-of-life, ...)."""
    FIX_DEFERRED = "fix-deferred"
    """A fix is postponed to a later point release (Debian "no-dsa", "postponed")."""
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class MatchEvidence:
    """How a finding was matched: which record, which range, on what."""

    record_id: str
    """The advisory record that matched (e.g. "DEBIAN-CVE-2023-5678", "GHSA-xxxx")."""
    ecosystem: str
    """OSV ecosystem searched ("Debian:12", "PyPI" ...)."""
    searched_name: str
    """The package name looked up (binary or source name, normalised)."""
    matched_on: str
    """"binary" | "source" | "name" | "stdlib"."""
    range: str
    """The range that matched, human readable ("introduced 0, fixed 3.0.11-1~deb12u2")."""
    matcher: str
    """Name of the matcher."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One vulnerability in one package."""

    id: str
    """Preferred id (the CVE when the record has one, else the record id)."""
    aliases: tuple[str, ...]
    package: Package
    status: FixState
    fixed_versions: tuple[str, ...] = ()
    severity: Severity = Severity.UNKNOWN
    score: float | None = None
    severity_source: str = ""
    """Where the severity came from: "CVSS:3.1 (GHSA-...)", "Debian urgency", ..."""
    cvss_vector: str | None = None
    summary: str = ""
    published: datetime | None = None
    modified: datetime | None = None
    fix_published: datetime | None = None
    references: tuple[str, ...] = ()
    evidence: tuple[MatchEvidence, ...] = ()


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The result of scanning one image."""

    image: ImageInfo
    facts: ImageFacts
    catalogue: Catalogue
    scanned_at: datetime
    analyzers: tuple[tuple[str, int], ...] = ()
    """(name, version) of every analyzer that ran."""
    findings: tuple[Finding, ...] = ()
    """Vulnerability findings, empty until matched."""
    db_snapshot: str | None = None
    """Id of the vulnerability DB snapshot the findings came from."""
