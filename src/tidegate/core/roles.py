"""Roles and what each may do. The console checks permissions, never role names."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    IMAGES_READ = "images:read"
    IMAGES_WRITE = "images:write"
    """Register images (by reference or with a scan result), trigger scans."""
    POLICIES_READ = "policies:read"
    POLICIES_WRITE = "policies:write"
    ACKS_READ = "acks:read"
    ACKS_WRITE = "acks:write"
    EVENTS_READ = "events:read"
    EVENTS_WRITE = "events:write"
    """Post events (CI scans, enforcers)."""
    REGISTRIES_READ = "registries:read"
    REGISTRIES_WRITE = "registries:write"
    USERS_ADMIN = "users:admin"
    """Create and change users and API tokens."""
    SCAN_JOBS = "scan-jobs"
    """Claim scan jobs and post their results (scanner workers)."""
    ENFORCE = "enforce"
    """Fetch policy bundles, post decisions (enforcers)."""


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    SECURITY_ANALYST = "security-analyst"
    AUDITOR = "auditor"
    CI = "ci"
    SCANNER = "scanner"
    ENFORCER = "enforcer"


_READ = frozenset(
    {
        Permission.IMAGES_READ,
        Permission.POLICIES_READ,
        Permission.ACKS_READ,
        Permission.EVENTS_READ,
        Permission.REGISTRIES_READ,
    }
)

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMINISTRATOR: frozenset(Permission),
    Role.SECURITY_ANALYST: _READ
    | {
        Permission.POLICIES_WRITE,
        Permission.ACKS_WRITE,
        Permission.IMAGES_WRITE,
        Permission.REGISTRIES_WRITE,
    },
    Role.AUDITOR: _READ,
    Role.CI: frozenset(
        {
            Permission.IMAGES_READ,
            Permission.IMAGES_WRITE,
            Permission.POLICIES_READ,
            Permission.ACKS_READ,
            Permission.EVENTS_WRITE,
        }
    ),
    Role.SCANNER: frozenset({Permission.SCAN_JOBS, Permission.IMAGES_READ}),
    Role.ENFORCER: frozenset({Permission.ENFORCE, Permission.IMAGES_READ, Permission.EVENTS_WRITE}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]
