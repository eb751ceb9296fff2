"""Users and groups of the image: `/etc/passwd` and `/etc/group`.

Owns the colon-separated formats of passwd(5) and group(5). Comments, blank lines and lines
that do not parse (too few fields, a uid or gid that is not a number) are skipped; only a file
where no line parses (but some line was there) is reported, as an Unknown. The scan uses the
users to resolve the image config's User to a uid.
"""

from __future__ import annotations

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, GroupEntry, Unknown, UserEntry

PASSWD_PATH = "/etc/passwd"
GROUP_PATH = "/etc/group"
_MAX_ID = 2**32 - 1


class PasswdAnalyzer(BufferedAnalyzer):
    """Reads the users of /etc/passwd and the groups of /etc/group."""

    name = "passwd"
    version = 1
    max_size = 16 * 1024 * 1024

    def wants(self, entry: Entry) -> bool:
        return entry.path in (PASSWD_PATH, GROUP_PATH)

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        if b"\x00" in data:
            raise AnalyzerError(f"{entry.path}: binary content (NUL bytes)")
        lines = _content_lines(data.decode("utf-8", errors="replace"))
        if entry.path == PASSWD_PATH:
            users = tuple(u for u in map(parse_passwd_line, lines) if u is not None)
            return FileFindings(
                analyzer=self.name,
                path=entry.path,
                users=users,
                unknowns=self._nothing_parsed(entry.path, layer, lines, users),
            )
        groups = tuple(g for g in map(parse_group_line, lines) if g is not None)
        return FileFindings(
            analyzer=self.name,
            path=entry.path,
            groups=groups,
            unknowns=self._nothing_parsed(entry.path, layer, lines, groups),
        )

    def _nothing_parsed(
        self, path: str, layer: str | None, lines: list[str], parsed: tuple[object, ...]
    ) -> tuple[Unknown, ...]:
        if parsed or not lines:
            return ()
        reason = f"none of its {len(lines)} lines is a valid entry"
        return (Unknown(path, reason, self.name, layer),)


def _content_lines(text: str) -> list[str]:
    lines = (raw.rstrip("\r") for raw in text.split("\n"))
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def parse_passwd_line(line: str) -> UserEntry | None:
    """`name:password:uid:gid:gecos:home:shell`, or None when the line is malformed."""
    fields = line.split(":")
    if len(fields) != 7 or not fields[0] or fields[0] != fields[0].strip():
        return None
    uid, gid = _id(fields[2]), _id(fields[3])
    if uid is None or gid is None:
        return None
    return UserEntry(name=fields[0], uid=uid, gid=gid, home=fields[5], shell=fields[6])


def parse_group_line(line: str) -> GroupEntry | None:
    """`name:password:gid:members`, or None when the line is malformed."""
    fields = line.split(":")
    if len(fields) != 4 or not fields[0] or fields[0] != fields[0].strip():
        return None
    gid = _id(fields[2])
    return None if gid is None else GroupEntry(name=fields[0], gid=gid)


def _id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if value <= _MAX_ID else None
