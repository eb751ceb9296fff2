"""The image's distribution: `/etc/os-release` and the older files that say the same thing.

Owns the os-release grammar (systemd's os-release(5): `KEY=VALUE` lines, single and double
quotes, backslash escapes, line continuations, comments) and the fallbacks older or smaller
images carry instead: `/etc/alpine-release`, `/etc/debian_version`, `/etc/redhat-release`,
`/etc/centos-release`, `/etc/system-release` and `/etc/lsb-release`.

Each file yields its own `OSInfo` (with `source` set to the path); the scan picks one. The order
this module recommends is `PRIORITY`, most trustworthy first:

    /etc/os-release > /usr/lib/os-release > /etc/alpine-release > /etc/centos-release
    > /etc/redhat-release > /etc/system-release > /etc/lsb-release > /etc/debian_version

os-release files are written for machines and win. The distro-specific release files are next;
`centos-release` before `redhat-release` because on CentOS both exist and only the former names
the distribution precisely. `/etc/debian_version` comes last because derivatives keep it with a
Debian value (Ubuntu 22.04 says "bookworm/sid" there). On Debian `/etc/os-release` is a symlink
to `/usr/lib/os-release`: resolving it is the scan's job, this analyzer reads regular files only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, OSInfo

PRIORITY: tuple[str, ...] = (
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/alpine-release",
    "/etc/centos-release",
    "/etc/redhat-release",
    "/etc/system-release",
    "/etc/lsb-release",
    "/etc/debian_version",
)
"""The files this analyzer reads, in the order the scan should prefer them."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOUBLE_QUOTE_ESCAPES = frozenset('"\\$`')

_DEBIAN_CODENAMES = {
    "6": "squeeze",
    "7": "wheezy",
    "8": "jessie",
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
}

# "<prefix> release <version> (<codename>)": the prefix names the os-release ID.
_REDHAT_FAMILY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("red hat enterprise linux", "rhel", ("fedora",)),
    ("centos stream", "centos", ("rhel", "fedora")),
    ("centos", "centos", ("rhel", "fedora")),
    ("rocky linux", "rocky", ("rhel", "centos", "fedora")),
    ("almalinux", "almalinux", ("rhel", "centos", "fedora")),
    ("oracle linux", "ol", ("fedora",)),
    ("fedora", "fedora", ()),
    ("amazon linux", "amzn", ("centos", "rhel", "fedora")),
)
_RELEASE_LINE = re.compile(
    r"^(?P<name>.+?)\s+release\s+(?P<version>\S+)(?:\s+\((?P<code>[^)]*)\))?"
)
# IDs whose os-release VERSION_ID carries only the major version.
_MAJOR_ONLY = frozenset({"centos", "fedora"})


class OSReleaseAnalyzer(BufferedAnalyzer):
    """Reads the distribution from os-release and the fallback release files."""

    name = "os-release"
    version = 1
    max_size = 64 * 1024

    def wants(self, entry: Entry) -> bool:
        return entry.path in _PARSERS

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        text = _decode(entry.path, data)
        info = _PARSERS[entry.path](entry.path, text)
        return FileFindings(analyzer=self.name, path=entry.path, os=info)


def parse_os_release(text: str) -> dict[str, str]:
    """The assignments of an os-release (or lsb-release) file, in the shell-like grammar.

    Malformed lines (no `=`, a key that is not a shell identifier) are skipped, as systemd does.
    """
    values: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        line_end = text.find("\n", pos)
        line_end = end if line_end < 0 else line_end
        stripped = text[pos:line_end].lstrip()
        if not stripped or stripped[0] in "#;":
            pos = line_end + 1
            continue
        lead = line_end - pos - len(stripped)
        key, sep, _ = stripped.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not _KEY.fullmatch(key):
            pos = line_end + 1
            continue
        value, pos = _read_value(text, pos + lead + stripped.index("=") + 1)
        values[key] = value
    return values


def _read_value(text: str, pos: int) -> tuple[str, int]:
    """Reads one value starting at `pos`; returns it and the position after its line."""
    out: list[str] = []
    trailing_ws = 0  # unquoted whitespace at the end of the value is dropped
    end = len(text)
    while pos < end and text[pos] in " \t":  # whitespace after "=" is not part of the value
        pos += 1
    while pos < end:
        ch = text[pos]
        if ch == "\n":
            pos += 1
            break
        if ch == "'":
            close = text.find("'", pos + 1)
            close = end if close < 0 else close
            out.append(text[pos + 1 : close])
            pos, trailing_ws = close + 1, 0
        elif ch == '"':
            pos = _read_double_quoted(text, pos + 1, out)
            trailing_ws = 0
        elif ch == "\\":
            nxt = text[pos + 1 : pos + 2]
            if nxt not in ("\n", ""):
                out.append(nxt)
            pos, trailing_ws = pos + 2, 0
        else:
            out.append(ch)
            trailing_ws = trailing_ws + 1 if ch in " \t\r" else 0
            pos += 1
    value = "".join(out)
    return (value[: len(value) - trailing_ws] if trailing_ws else value), pos


def _read_double_quoted(text: str, pos: int, out: list[str]) -> int:
    end = len(text)
    while pos < end:
        ch = text[pos]
        if ch == '"':
            return pos + 1
        if ch == "\\" and pos + 1 < end:
            nxt = text[pos + 1]
            if nxt in _DOUBLE_QUOTE_ESCAPES:
                out.append(nxt)
            elif nxt != "\n":  # backslash-newline continues the line
                out.append(ch + nxt)
            pos += 2
            continue
        out.append(ch)
        pos += 1
    return pos


def _decode(path: str, data: bytes) -> str:
    if b"\x00" in data:
        raise AnalyzerError(f"{path}: binary content (NUL bytes) in a release file")
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n")


def _from_os_release(path: str, text: str) -> OSInfo:
    values = parse_os_release(text)
    if not values:
        raise AnalyzerError(f"{path}: no KEY=VALUE assignment in the file")
    version = values.get("VERSION", "")
    codename = values.get("VERSION_CODENAME", "") or _codename_in_parens(version)
    return OSInfo(
        id=(values.get("ID") or "linux").lower(),  # os-release(5): ID defaults to "linux"
        version_id=values.get("VERSION_ID", ""),
        pretty_name=values.get("PRETTY_NAME") or values.get("NAME", ""),
        version_codename=codename,
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
        source=path,
    )


def _codename_in_parens(version: str) -> str:
    # Debian before 9 has no VERSION_CODENAME but writes VERSION="8 (jessie)".
    match = re.search(r"\(([a-z]+)\)", version)
    return match.group(1) if match else ""


def _from_lsb_release(path: str, text: str) -> OSInfo:
    values = parse_os_release(text)
    distrib = values.get("DISTRIB_ID", "").strip()
    if not distrib:
        raise AnalyzerError(f"{path}: no DISTRIB_ID in the file")
    return OSInfo(
        id=distrib.lower().replace(" ", ""),
        version_id=values.get("DISTRIB_RELEASE", ""),
        pretty_name=values.get("DISTRIB_DESCRIPTION", ""),
        version_codename=values.get("DISTRIB_CODENAME", ""),
        source=path,
    )


def _first_line(path: str, text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    raise AnalyzerError(f"{path}: the file is empty")


def _from_alpine_release(path: str, text: str) -> OSInfo:
    version = _first_line(path, text)
    if not re.fullmatch(r"[0-9][0-9A-Za-z._-]*", version):
        raise AnalyzerError(f"{path}: {version[:60]!r} is not an Alpine version")
    branch = ".".join(version.split(".")[:2])
    return OSInfo(
        id="alpine", version_id=version, pretty_name=f"Alpine Linux v{branch}", source=path
    )


def _from_debian_version(path: str, text: str) -> OSInfo:
    value = _first_line(path, text)
    if re.fullmatch(r"[0-9]+(\.[0-9]+)*", value):
        major = value.split(".")[0]
        codename = _DEBIAN_CODENAMES.get(major, "")
        pretty = f"Debian GNU/Linux {major}" + (f" ({codename})" if codename else "")
        return OSInfo(
            id="debian",
            version_id=major,
            pretty_name=pretty,
            version_codename=codename,
            source=path,
        )
    # Testing/unstable write "trixie/sid": a codename, no number.
    codename = value.split("/")[0]
    if not re.fullmatch(r"[a-z]+", codename):
        raise AnalyzerError(f"{path}: {value[:60]!r} is not a Debian version")
    return OSInfo(
        id="debian",
        pretty_name=f"Debian GNU/Linux {value}",
        version_codename=codename,
        source=path,
    )


def _from_redhat_release(path: str, text: str) -> OSInfo:
    line = _first_line(path, text)
    match = _RELEASE_LINE.match(line)
    if match is None:
        raise AnalyzerError(f"{path}: {line[:80]!r} is not a '<name> release <version>' line")
    os_id, id_like = _redhat_family(match.group("name").lower())
    version = match.group("version")
    if os_id in _MAJOR_ONLY:
        version = version.split(".")[0]
    return OSInfo(
        id=os_id,
        version_id=version,
        pretty_name=line,
        version_codename=(match.group("code") or "").lower(),
        id_like=id_like,
        source=path,
    )


def _redhat_family(name: str) -> tuple[str, tuple[str, ...]]:
    for prefix, os_id, id_like in _REDHAT_FAMILY:
        if name.startswith(prefix):
            return os_id, id_like
    return re.sub(r"[^a-z0-9]+", "", name.split()[0]), ()


_PARSERS: dict[str, Callable[[str, str], OSInfo]] = {
    "/etc/os-release": _from_os_release,
    "/usr/lib/os-release": _from_os_release,
    "/etc/alpine-release": _from_alpine_release,
    "/etc/centos-release": _from_redhat_release,
    "/etc/redhat-release": _from_redhat_release,
    "/etc/system-release": _from_redhat_release,
    "/etc/lsb-release": _from_lsb_release,
    "/etc/debian_version": _from_debian_version,
}
