"""Debian packages: the dpkg status database and the per-package files of distroless images.

Owns the deb822 control-paragraph grammar as dpkg writes it (fields, continuation lines,
several paragraphs, CRLF tolerated) and the reading of `/var/lib/dpkg/status` and
`/var/lib/dpkg/status.d/*` (distroless images keep one file per package there, next to
`*.md5sums` files that are not control data). Only installed packages count: a status entry
whose Status says "installed" (`install ok installed`, `hold ok installed` ...); status.d files
carry no Status and describe installed packages. A paragraph that lacks Package or Version is
an Unknown for that paragraph only; the rest of the file is still catalogued.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType, Unknown

STATUS_PATH = "/var/lib/dpkg/status"
STATUS_DIR = "/var/lib/dpkg/status.d/"

_FIELD = re.compile(r"([^\s:][^:\s]*)\s*:(.*)")
_SOURCE = re.compile(r"(?P<name>[^\s(]+)\s*(?:\((?P<version>[^)]*)\))?\s*$")
_MAX_UNKNOWNS = 20
"""Bad paragraphs reported one by one; beyond that a single summary (hostile files)."""


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One deb822 paragraph: its fields (names lower-cased) and the line it starts on."""

    line: int
    fields: dict[str, str]


class DpkgAnalyzer(BufferedAnalyzer):
    """Catalogues the installed Debian packages recorded by dpkg."""

    name = "dpkg"
    version = 1
    max_size = 64 * 1024 * 1024

    def wants(self, entry: Entry) -> bool:
        if entry.path == STATUS_PATH:
            return True
        if not entry.path.startswith(STATUS_DIR):
            return False
        base = entry.path[len(STATUS_DIR) :]
        return bool(base) and "/" not in base and not base.endswith(".md5sums")

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        if b"\x00" in data:
            raise AnalyzerError(f"{entry.path}: binary content (NUL bytes) in a dpkg status file")
        text = data.decode("utf-8", errors="replace")
        require_status = entry.path == STATUS_PATH
        location = Location(entry.path, layer)
        packages: list[Package] = []
        problems: list[str] = []
        for paragraph in parse_deb822(text):
            try:
                package = _package(paragraph, location, require_status=require_status)
            except AnalyzerError as exc:
                problems.append(str(exc))
                continue
            if package is not None:
                packages.append(package)
        return FileFindings(
            analyzer=self.name,
            path=entry.path,
            packages=tuple(packages),
            unknowns=_unknowns(entry.path, layer, problems),
        )


def parse_deb822(text: str) -> Iterator[Paragraph]:
    """The paragraphs of a deb822 document, in order.

    Lines that are neither a field nor a continuation (garbage) are ignored; a continuation
    line before any field is ignored too. Comment lines (`#`) are skipped.
    """
    fields: dict[str, str] = {}
    start = 0
    current: str | None = None
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if fields:
                yield Paragraph(start, fields)
            fields, current = {}, None
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if current is not None:
                fields[current] += "\n" + line.strip()
            continue
        match = _FIELD.match(line)
        if match is None:
            current = None
            continue
        if not fields:
            start = number
        current = match.group(1).lower()
        fields[current] = match.group(2).strip()
    if fields:
        yield Paragraph(start, fields)


def _package(paragraph: Paragraph, location: Location, *, require_status: bool) -> Package | None:
    fields = paragraph.fields
    name = fields.get("package", "")
    if require_status and not _installed(fields.get("status", "")):
        return None
    where = f"paragraph at line {paragraph.line}" + (f" (package {name!r})" if name else "")
    version = fields.get("version", "")
    if not name or " " in name:
        raise AnalyzerError(f"{where}: missing or invalid Package field")
    if not version or any(c.isspace() for c in version):
        raise AnalyzerError(f"{where}: missing or invalid Version field")
    source_name, source_version = name, version
    source = fields.get("source", "")
    if source:
        match = _SOURCE.match(source)
        if match is None:
            raise AnalyzerError(f"{where}: malformed Source field {source[:80]!r}")
        source_name = match.group("name")
        source_version = (match.group("version") or "").strip() or version
    return Package(
        name=name,
        version=version,
        type=PackageType.DEB,
        found_by=DpkgAnalyzer.name,
        locations=(location,),
        source_name=source_name,
        source_version=source_version,
        arch=fields.get("architecture") or None,
    )


def _installed(status: str) -> bool:
    # "want flag state": only the state word says whether the files are on disk.
    words = status.split()
    return len(words) == 3 and words[2] == "installed"


def _unknowns(path: str, layer: str | None, problems: list[str]) -> tuple[Unknown, ...]:
    unknowns = [Unknown(path, reason, DpkgAnalyzer.name, layer) for reason in problems]
    if len(unknowns) > _MAX_UNKNOWNS:
        rest = len(unknowns) - _MAX_UNKNOWNS
        unknowns = unknowns[:_MAX_UNKNOWNS]
        unknowns.append(
            Unknown(path, f"{rest} more malformed paragraphs", DpkgAnalyzer.name, layer)
        )
    return tuple(unknowns)
