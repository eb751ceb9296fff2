"""Which OSV ecosystem (and which package name and version) a catalogued package is matched in.

OS packages are matched in their distribution's release ("Debian:12", "Alpine:v3.18"); records of
Debian, Ubuntu and Alpine name *source* packages (openssl, not libssl3), rpm-based distributions
name binary packages. Language packages are matched in their ecosystem by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from tidegate.core.models import OSInfo, Package, PackageType
from tidegate.core.versions import VersionKind


@dataclass(frozen=True, slots=True)
class Query:
    """One lookup in the vulnerability DB for one package."""

    family: str
    """OSV ecosystem family looked up ("Debian", "PyPI" ...)."""
    release: str | None
    """Release prefix an entry's ecosystem must have ("Debian:12"); None for languages."""
    name: str
    version: str
    kind: VersionKind
    matched_on: str
    """"source", "binary", "name" or "stdlib"."""

    @property
    def lookup(self) -> str:
        """What to ask the store: the exact release where feeds name releases exactly."""
        if self.release is not None and self.family in _EXACT_RELEASES:
            return self.release
        return self.family

    def covers(self, ecosystem: str) -> bool:
        """Is an entry of `ecosystem` about this package's release?"""
        if self.release is None:
            return ecosystem.split(":", 1)[0] == self.family
        if ecosystem == self.release or ecosystem.startswith(self.release + ":"):
            return True
        if self.family == "Red Hat":
            # "Red Hat:enterprise_linux:9::appstream", "Red Hat:rhel_eus:9.2::baseos"
            major = self.release.split(":", 1)[1]
            return re.search(rf":{major}(\.\d+)?(:|$)", ecosystem) is not None
        return False


_EXACT_RELEASES = frozenset({"Debian", "Alpine", "AlmaLinux", "Rocky Linux"})
"""Families whose feeds name a release exactly as `os_release_ecosystem` does."""

_LANGUAGE = {
    PackageType.PYPI: ("PyPI", VersionKind.PYPI),
    PackageType.NPM: ("npm", VersionKind.NPM),
    PackageType.MAVEN: ("Maven", VersionKind.MAVEN),
    PackageType.GOLANG: ("Go", VersionKind.GOLANG),
}

_RPM_FAMILIES = {
    "rhel": "Red Hat",
    "almalinux": "AlmaLinux",
    "rocky": "Rocky Linux",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "sles": "SUSE",
    "mageia": "Mageia",
    "openeuler": "openEuler",
    "azurelinux": "Azure Linux",
    "photon": "Photon OS",
}


def queries_for(pkg: Package, os: OSInfo | None) -> list[Query]:
    """The lookups that find every record about `pkg`; empty when its ecosystem has no feed."""
    if pkg.type in _LANGUAGE:
        family, kind = _LANGUAGE[pkg.type]
        on = "stdlib" if pkg.type is PackageType.GOLANG and pkg.name == "stdlib" else "name"
        return [Query(family, None, pkg.name, pkg.version, kind, on)]
    if os is None:
        return []
    release = os_release_ecosystem(os)
    if release is None:
        return []
    family = release.split(":", 1)[0]
    if pkg.type is PackageType.DEB or pkg.type is PackageType.APK:
        kind = VersionKind.DEB if pkg.type is PackageType.DEB else VersionKind.APK
        if pkg.source_name:
            version = pkg.source_version or pkg.version
            return [Query(family, release, pkg.source_name, version, kind, "source")]
        return [Query(family, release, pkg.name, pkg.version, kind, "binary")]
    if pkg.type is PackageType.RPM:
        found = [Query(family, release, pkg.name, pkg.version, VersionKind.RPM, "binary")]
        if pkg.source_name and pkg.source_name != pkg.name:
            found.append(
                Query(family, release, pkg.source_name, pkg.version, VersionKind.RPM, "source")
            )
        return found
    return []


_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")
_MAJOR = re.compile(r"^(\d+)")


@lru_cache(maxsize=64)  # asked for every OS package of an image
def os_release_ecosystem(os: OSInfo) -> str | None:
    """The OSV ecosystem of a distribution release: "Debian:12", "Alpine:v3.18", "Ubuntu:22.04"."""
    version = os.version_id
    match os.id:
        case "debian":
            major = _MAJOR.match(version)
            return f"Debian:{major.group(1)}" if major else None
        case "ubuntu":
            mm = _MAJOR_MINOR.match(version)
            return f"Ubuntu:{mm.group(1)}.{mm.group(2)}" if mm else None
        case "alpine":
            mm = _MAJOR_MINOR.match(version)
            return f"Alpine:v{mm.group(1)}.{mm.group(2)}" if mm else None
        case _:
            family = _RPM_FAMILIES.get(os.id)
            major = _MAJOR.match(version)
            if family is None or major is None:
                return None
            return f"{family}:{major.group(1)}"
