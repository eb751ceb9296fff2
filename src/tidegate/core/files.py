"""What a layer (or a root filesystem) says about one path: the unit analyzers look at.

Paths are absolute, normalised POSIX paths inside the image ("/usr/bin/env"): no "." or ".."
components, no trailing slash, "/" for the root itself. Image readers produce them; analyzers
only ever see these values, never raw tar member names.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from enum import StrEnum


class EntryKind(StrEnum):
    """The kind of a layer entry."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    WHITEOUT = "whiteout"
    """`.wh.NAME`: removes `path` (and what is below it) from the layers underneath."""
    OPAQUE = "opaque"
    """`.wh..wh..opq` in a directory: hides everything the layers underneath had below `path`."""
    OTHER = "other"
    """Devices, fifos: recorded, never read."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of one layer."""

    path: str
    """Absolute normalised path inside the image."""
    kind: EntryKind
    mode: int = 0
    """Permission bits including setuid/setgid/sticky (`stat.S_IMODE`), no file-type bits."""
    size: int = 0
    """Content size in bytes for FILE; 0 otherwise."""
    uid: int = 0
    gid: int = 0
    link_target: str | None = None
    """SYMLINK: the target exactly as stored (may be relative or absolute, may point anywhere).
    HARDLINK: the normalised absolute path of the linked file in the same layer."""
    mtime: int = 0

    @property
    def is_executable(self) -> bool:
        """Any execute bit set on a regular file."""
        return self.kind is EntryKind.FILE and bool(self.mode & 0o111)

    @property
    def is_setuid(self) -> bool:
        return bool(self.mode & stat.S_ISUID)

    @property
    def is_setgid(self) -> bool:
        return bool(self.mode & stat.S_ISGID)


def normalize_path(raw: str) -> str | None:
    """Normalise a member name to an absolute image path; None when it escapes the root.

    A leading "/" or "./" is dropped (tar writers differ); ".." that would climb above the root
    makes the name hostile and the caller records it as an unknown.
    """
    parts: list[str] = []
    for part in raw.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def resolve_in_root(link_path: str, target: str) -> str:
    """Where a symlink at `link_path` points, clamped inside the image root (chroot semantics).

    An absolute target is taken from the image root; ".." never climbs above "/".
    """
    base = "/" if target.startswith("/") else link_path.rsplit("/", 1)[0] or "/"
    parts: list[str] = [p for p in base.split("/") if p]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)
