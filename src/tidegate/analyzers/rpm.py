"""RPM packages: the rpm database in any of its three formats.

Owns finding the header blobs in each database format and turning them into packages:

- `rpmdb.sqlite` (`/var/lib/rpm` and `/usr/lib/sysimage/rpm`): table `Packages(hnum, blob)`.
  The file is opened from memory (`sqlite3` `deserialize`), never written to disk. A database
  left in WAL mode is read as a rollback-journal one; changes still in the `-wal` file, which
  this analyzer never sees, are not part of the result.
- `Packages` (Berkeley DB hash, RHEL/CentOS <= 8, Amazon Linux 2): read by `rpmdb_bdb`.
- `Packages.db` (rpm's "ndb", SUSE Linux Enterprise and openSUSE): read by `rpmdb_ndb`.

Headers are parsed by `rpm_header`. `gpg-pubkey` pseudo-packages (imported signing keys) are
skipped. A header that cannot be parsed is an Unknown; the other packages are still returned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from tidegate.analyzers.interface import AnalyzerError, BufferedAnalyzer
from tidegate.analyzers.rpm_header import HeaderError, RpmHeader, parse_header, split_source_rpm
from tidegate.analyzers.rpmdb_bdb import BdbError, HashReader
from tidegate.analyzers.rpmdb_ndb import NdbError, NdbReader
from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Location, Package, PackageType, Unknown

SQLITE_PATHS = frozenset({"/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite"})
BDB_PATHS = frozenset({"/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages"})
NDB_PATHS = frozenset({"/var/lib/rpm/Packages.db", "/usr/lib/sysimage/rpm/Packages.db"})
_ALL_PATHS = SQLITE_PATHS | BDB_PATHS | NDB_PATHS
_SQLITE_MAGIC = b"SQLite format 3\x00"
_MAX_UNKNOWNS = 20
_SQLITE_STEP_LIMIT = 50_000
"""Progress-handler calls (each 10,000 VM steps) before a query is abandoned: a hostile schema
or corrupt b-tree must not keep the scan busy."""


class RpmAnalyzer(BufferedAnalyzer):
    """Catalogues the packages of an rpm database."""

    name = "rpm"
    version = 1
    max_size = 512 * 1024 * 1024  # rpm databases of large images reach hundreds of MiB

    def wants(self, entry: Entry) -> bool:
        return entry.path in _ALL_PATHS

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        problems: list[str] = []
        if entry.path in SQLITE_PATHS:
            blobs = list(_sqlite_blobs(entry.path, data))
        elif entry.path in NDB_PATHS:
            blobs = _ndb_blobs(entry.path, data, problems)
        else:
            blobs = _bdb_blobs(entry.path, data, problems)
        location = Location(entry.path, layer)
        packages: list[Package] = []
        for number, blob in blobs:
            try:
                header = parse_header(blob)
            except HeaderError as exc:
                problems.append(f"header {number}: {exc}")
                continue
            if header.name != "gpg-pubkey":
                packages.append(_package(header, location))
        return FileFindings(
            analyzer=self.name,
            path=entry.path,
            packages=tuple(packages),
            unknowns=_unknowns(entry.path, layer, problems),
        )


def _sqlite_blobs(path: str, data: bytes) -> Iterator[tuple[int, bytes]]:
    if not data.startswith(_SQLITE_MAGIC):
        raise AnalyzerError(f"{path}: not an SQLite database (bad magic)")
    image: bytes | bytearray = data
    if data[18:20] == b"\x02\x02":
        # A WAL-mode database cannot be opened in memory ("unable to open database file"):
        # the header's read/write versions are set back to rollback-journal mode.
        image = bytearray(data)
        image[18] = image[19] = 1
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(image)
        steps = iter(range(_SQLITE_STEP_LIMIT))
        conn.set_progress_handler(lambda: next(steps, None) is None, 10_000)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        if kind is None or kind[0] != "table":
            raise AnalyzerError(f"{path}: no Packages table in the rpm database")
        rows = conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    except sqlite3.Error as exc:
        raise AnalyzerError(f"{path}: unreadable rpm SQLite database: {exc}") from exc
    finally:
        conn.close()
    for hnum, blob in rows:
        if isinstance(hnum, int) and isinstance(blob, bytes):
            yield hnum, blob


def _bdb_blobs(path: str, data: bytes, problems: list[str]) -> list[tuple[int, bytes]]:
    try:
        reader = HashReader(data)
    except BdbError as exc:
        raise AnalyzerError(f"{path}: {exc}") from exc
    blobs = list(enumerate(reader.values(), start=1))
    problems.extend(reader.problems)
    return blobs


def _ndb_blobs(path: str, data: bytes, problems: list[str]) -> list[tuple[int, bytes]]:
    try:
        reader = NdbReader(data)
    except NdbError as exc:
        raise AnalyzerError(f"{path}: {exc}") from exc
    blobs = list(reader.blobs())
    problems.extend(reader.problems)
    return blobs


def _package(header: RpmHeader, location: Location) -> Package:
    source = split_source_rpm(header.sourcerpm)
    return Package(
        name=header.name,
        version=header.evr,
        type=PackageType.RPM,
        found_by=RpmAnalyzer.name,
        locations=(location,),
        source_name=source[0] if source else None,
        source_version=source[1] if source else None,
        arch=header.arch or None,
        licenses=(header.license,) if header.license else (),
        # The source rpm's file name has no epoch; matchers that key on the source need it.
        metadata=(("epoch", str(header.epoch)),) if header.epoch is not None else (),
    )


def _unknowns(path: str, layer: str | None, problems: list[str]) -> tuple[Unknown, ...]:
    unknowns = [Unknown(path, reason, RpmAnalyzer.name, layer) for reason in problems]
    if len(unknowns) > _MAX_UNKNOWNS:
        rest = len(unknowns) - _MAX_UNKNOWNS
        unknowns = unknowns[:_MAX_UNKNOWNS]
        unknowns.append(Unknown(path, f"{rest} more problems", RpmAnalyzer.name, layer))
    return tuple(unknowns)
