"""Turn the visible findings of a squashed image into one Catalogue.

This is where facts that span files are resolved: which os-release wins, the purl of an OS package
(it needs the distribution), duplicates of one package reported by two files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from tidegate.analyzers.os_release import PRIORITY as OS_RELEASE_PRIORITY
from tidegate.analyzers.rpm import BDB_PATHS, NDB_PATHS, SQLITE_PATHS
from tidegate.core.models import (
    Catalogue,
    Executable,
    FileFindings,
    GroupEntry,
    OSInfo,
    Package,
    Secret,
    Unknown,
    UserEntry,
)
from tidegate.core.purl import package_purl

RPMDB_PREFERENCE = (SQLITE_PATHS, NDB_PATHS, BDB_PATHS)
"""An image may keep a stale older rpm database next to the current one: read only the newest."""


def pick_os(found: Iterable[FileFindings]) -> OSInfo | None:
    candidates = {f.path: f.os for f in found if f.os is not None}
    for path in OS_RELEASE_PRIORITY:
        info = candidates.get(path)
        if info is not None:
            return info
    return next(iter(candidates.values()), None)


def build_catalogue(
    found: Sequence[FileFindings], extra_unknowns: Sequence[Unknown]
) -> tuple[Catalogue, list[GroupEntry]]:
    """One catalogue from the visible findings, plus the image's groups (for user resolution)."""
    found = _one_rpmdb(found)
    os_info = pick_os(found)
    packages: dict[tuple[str, str, str, str], Package] = {}
    executables: list[Executable] = []
    secrets: list[Secret] = []
    users: list[UserEntry] = []
    groups: list[GroupEntry] = []
    unknowns: list[Unknown] = list(extra_unknowns)
    for f in found:
        for pkg in f.packages:
            if not pkg.purl:
                pkg = replace(pkg, purl=package_purl(pkg, os_info))
            packages.setdefault(pkg.key, pkg)
        if f.executable is not None:
            executables.append(f.executable)
        secrets.extend(f.secrets)
        if f.path == "/etc/passwd":
            users.extend(f.users)
        if f.path == "/etc/group":
            groups.extend(f.groups)
        unknowns.extend(f.unknowns)
    catalogue = Catalogue(
        os=os_info,
        packages=tuple(sorted(packages.values(), key=_package_order)),
        executables=tuple(sorted(executables, key=lambda e: e.path)),
        secrets=tuple(sorted(secrets, key=lambda s: (s.path, s.line or 0, s.rule_id))),
        users=tuple(users),
        unknowns=tuple(unknowns),
    )
    return catalogue, groups


def _package_order(p: Package) -> tuple[str, str, str, str]:
    return (p.type.value, p.name, p.version, p.locations[0].path if p.locations else "")


def _one_rpmdb(found: Sequence[FileFindings]) -> list[FileFindings]:
    rpm_paths = {f.path for f in found if f.analyzer == "rpm" and f.packages}
    keep = next((paths for paths in RPMDB_PREFERENCE if rpm_paths & paths), frozenset())
    return [f for f in found if f.analyzer != "rpm" or not f.packages or f.path in keep]
