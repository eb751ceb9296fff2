"""Alpine packages: the apk installed database.

Owns the reading of `/lib/apk/db/installed` (and `/usr/lib/apk/db/installed`, where newer apk
keeps it): blank-line separated records of `X:value` lines, one letter per field. The fields
used are P (name), V (version), A (arch), o (origin: the source package, built from the same
aport at the same version) and L (license, an SPDX-like expression kept whole). File lists
(F/R/a/Z ...) are skipped. A record without P or V is an Unknown for that record only.
"""

from __future__ import annotations

from collections.abc import Iterator

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType, Unknown

INSTALLED_PATHS = frozenset({"/lib/apk/db/installed", "/usr/lib/apk/db/installed"})
_WANTED_FIELDS = frozenset("PVAoL")
_MAX_UNKNOWNS = 20


class ApkAnalyzer(BufferedAnalyzer):
    """Catalogues the packages apk records as installed."""

    name = "apk"
    version = 1
    max_size = 128 * 1024 * 1024

    def wants(self, entry: Entry) -> bool:
        return entry.path in INSTALLED_PATHS

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        if b"\x00" in data:
            raise AnalyzerError(f"{entry.path}: binary content (NUL bytes) in an apk database")
        location = Location(entry.path, layer)
        packages: list[Package] = []
        unknowns: list[Unknown] = []
        for line, record in parse_records(data.decode("utf-8", errors="replace")):
            name, version = record.get("P", ""), record.get("V", "")
            if not name or not version:
                missing = "P (name)" if not name else f"V (version) of {name!r}"
                unknowns.append(
                    Unknown(entry.path, f"record at line {line}: no {missing}", self.name, layer)
                )
                continue
            packages.append(_package(record, location))
        if len(unknowns) > _MAX_UNKNOWNS:
            rest = len(unknowns) - _MAX_UNKNOWNS
            del unknowns[_MAX_UNKNOWNS:]
            unknowns.append(Unknown(entry.path, f"{rest} more malformed records", self.name, layer))
        return FileFindings(
            analyzer=self.name, path=entry.path, packages=tuple(packages), unknowns=tuple(unknowns)
        )


def parse_records(text: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(first line number, fields) of each record; only the fields this analyzer uses are kept.

    Lines that are not `X:value` are ignored; a repeated field keeps its first value.
    """
    record: dict[str, str] = {}
    start = 0
    seen = False
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            if seen:
                yield start, record
            record, seen = {}, False
            continue
        if not seen:
            start, seen = number, True
        if len(line) >= 2 and line[1] == ":" and line[0] in _WANTED_FIELDS:
            record.setdefault(line[0], line[2:].strip())
    if seen:
        yield start, record


def _package(record: dict[str, str], location: Location) -> Package:
    name, version = record["P"], record["V"]
    license_ = record.get("L", "")
    return Package(
        name=name,
        version=version,
        type=PackageType.APK,
        found_by=ApkAnalyzer.name,
        locations=(location,),
        source_name=record.get("o") or name,
        source_version=version,  # an origin is built from the same aport version
        arch=record.get("A") or None,
        licenses=(license_,) if license_ else (),
    )
