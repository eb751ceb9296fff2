"""RpmAnalyzer: real rpm databases built here with rpmbuild + rpm (SQLite) and db5.3_load
(Berkeley DB hash, both byte orders, read back by rpm's own bdb_ro backend), compared with
`rpm -qa`; and hostile headers, SQLite files and BDB files.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from util import LAYER, file_entry, run_analyzer

from tidegate.analyzers.interface import AnalyzerError
from tidegate.analyzers.rpm import RpmAnalyzer
from tidegate.analyzers.rpm_header import HeaderError, parse_header, split_source_rpm
from tidegate.core.models import FileFindings, Location, PackageType

SQLITE_PATH = "/var/lib/rpm/rpmdb.sqlite"
BDB_PATH = "/var/lib/rpm/Packages"
NDB_PATH = "/usr/lib/sysimage/rpm/Packages.db"
QUERY_FORMAT = "%{NAME}\t%{EVR}\t%{SOURCERPM}\t%{ARCH}\t%{LICENSE}\n"

SPECS = {
    # A main package without %files and one subpackage: the source rpm is named after the main.
    "openssl": """Name: openssl
Epoch: 1
Version: 3.0.7
Release: 24.el9
Summary: t
License: Apache-2.0
BuildArch: x86_64
%description
t
%package libs
Summary: t
%description libs
t
%install
mkdir -p %{buildroot}/usr/lib64
for i in $(seq 1 40); do echo $i > %{buildroot}/usr/lib64/libcrypto-part-$i.so; done
%files libs
/usr/lib64/*
""",
    # Hundreds of files make a header spanning many overflow pages.
    "bash": """Name: bash
Version: 5.1.8
Release: 9.el9
Summary: t
License: GPL-3.0-or-later
BuildArch: x86_64
%description
t
%install
mkdir -p %{buildroot}/usr/share/bash/completions
for i in $(seq 1 600); do
  echo $i > %{buildroot}/usr/share/bash/completions/completion-for-command-number-$i
done
%files
/usr/share/bash/completions
""",
    "tzdata": """Name: tzdata
Version: 2024a
Release: 1.el9
Summary: t
License: LicenseRef-Fedora-Public-Domain
BuildArch: noarch
%description
t
%files
""",
    "zeroepoch": """Name: zeroepoch
Epoch: 0
Version: 1.0
Release: 1
Summary: t
License: MIT AND BSD-3-Clause
BuildArch: noarch
%description
t
%files
""",
}


@dataclass(frozen=True)
class RpmDb:
    root: Path
    """--dbpath of the SQLite rpmdb."""
    expected: list[tuple[str, ...]]
    """What `rpm -qa` says (gpg-pubkey removed): name, evr, source rpm, arch, license."""
    has_pubkey: bool


def _rpm(*args: str) -> str:
    return subprocess.run(
        ["rpm", *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def _query(dbpath: Path, *defines: str) -> list[tuple[str, ...]]:
    out = _rpm("--dbpath", str(dbpath), *defines, "-qa", "--qf", QUERY_FORMAT)
    return sorted(tuple(line.split("\t")) for line in out.splitlines())


def _import_pubkey(tmp: Path, dbpath: Path) -> bool:
    """Adds a gpg-pubkey pseudo-package, as `rpm --import` does on real systems."""
    if shutil.which("gpg") is None:
        return False
    home = tmp / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    gpg = ["gpg", "--batch", "--passphrase", ""]
    uid = "Tidegate Test <test@example.invalid>"
    subprocess.run(
        [*gpg, "--quick-gen-key", uid, "rsa2048", "sign", "never"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    key = subprocess.run(
        [*gpg, "--armor", "--export", "test@example.invalid"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    (tmp / "key.asc").write_bytes(key)
    _rpm("--dbpath", str(dbpath), "--import", str(tmp / "key.asc"))
    return True


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> RpmDb:
    """A real SQLite rpmdb holding packages built here with rpmbuild."""
    if shutil.which("rpmbuild") is None or shutil.which("rpm") is None:
        pytest.skip("rpm / rpmbuild are not installed (Debian package: rpm)")
    tmp = tmp_path_factory.mktemp("rpmdb")
    top = tmp / "top"
    for name, spec in SPECS.items():
        (tmp / f"{name}.spec").write_text(spec)
        subprocess.run(
            [
                "rpmbuild",
                "--define",
                f"_topdir {top}",
                "--define",
                "_build_id_links none",
                "-bb",
                str(tmp / f"{name}.spec"),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    dbpath = tmp / "db"
    dbpath.mkdir()
    _rpm("--dbpath", str(dbpath), "--initdb")
    rpms = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
    _rpm("--dbpath", str(dbpath), "-i", "--justdb", "--nodeps", "--noscripts", *rpms)
    has_pubkey = _import_pubkey(tmp, dbpath)
    rows = _query(dbpath)
    expected = [row for row in rows if row[0] != "gpg-pubkey"]
    assert len(rows) == len(expected) + has_pubkey
    return RpmDb(dbpath, expected, has_pubkey)


def _rows(findings: FileFindings) -> list[tuple[str, ...]]:
    return sorted(
        (
            p.name,
            p.version,
            f"{p.source_name}-{p.source_version}.src.rpm",
            p.arch or "",
            *p.licenses,
        )
        for p in findings.packages
    )


@pytest.mark.system
@pytest.mark.parametrize("path", [SQLITE_PATH, "/usr/lib/sysimage/rpm/rpmdb.sqlite"])
def test_sqlite_rpmdb_equals_rpm_qa(rpmdb: RpmDb, path: str) -> None:
    data = (rpmdb.root / "rpmdb.sqlite").read_bytes()
    assert data[18:20] == b"\x02\x02"  # rpm leaves the database in WAL mode
    findings = run_analyzer(RpmAnalyzer(), path, data, chunk_size=65536)
    assert findings.unknowns == ()
    assert _rows(findings) == rpmdb.expected
    by_name = {p.name: p for p in findings.packages}
    assert set(by_name) == {"openssl-libs", "bash", "tzdata", "zeroepoch"}
    libs = by_name["openssl-libs"]
    assert (libs.version, libs.source_name, libs.source_version) == (
        "1:3.0.7-24.el9",
        "openssl",
        "3.0.7-24.el9",
    )
    assert libs.metadata == (("epoch", "1"),)
    assert by_name["bash"].metadata == ()
    assert by_name["zeroepoch"].version == "0:1.0-1"
    for p in findings.packages:
        assert p.type is PackageType.RPM
        assert p.locations == (Location(path, LAYER),)


def _sqlite_rows(dbpath: Path) -> list[tuple[int, bytes]]:
    conn = sqlite3.connect(dbpath / "rpmdb.sqlite")
    try:
        return conn.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    finally:
        conn.close()


def _db_load(target: Path, pairs: list[tuple[bytes, bytes]], lorder: str, pagesize: int) -> None:
    """Writes a Berkeley DB hash file with libdb's own loader (db_dump's bytevalue format)."""
    lines = [
        "VERSION=3",
        "format=bytevalue",
        "type=hash",
        f"db_lorder={lorder}",
        f"db_pagesize={pagesize}",
        "HEADER=END",
    ]
    for key, value in pairs:
        lines += [" " + key.hex(), " " + value.hex()]
    lines.append("DATA=END")
    subprocess.run(
        ["db5.3_load", str(target)],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=120,
    )


def _bdb_packages(rpmdb: RpmDb, dest: Path, lorder: str, pagesize: int) -> Path:
    """The SQLite rpmdb's headers rewritten as the Berkeley DB `Packages` of an older rpm."""
    if shutil.which("db5.3_load") is None:
        pytest.skip("db5.3_load is not installed (Debian package: db5.3-util)")
    order = "<" if lorder == "1234" else ">"
    rows = _sqlite_rows(rpmdb.root)
    # Key 0 holds rpm's next instance number; keys are written in the host's byte order.
    pairs = [(struct.pack(order + "I", 0), struct.pack(order + "I", len(rows) + 1))]
    pairs += [(struct.pack(order + "I", hnum), blob) for hnum, blob in rows]
    dest.mkdir(exist_ok=True)
    _db_load(dest / "Packages", pairs, lorder, pagesize)
    return dest / "Packages"


@pytest.mark.system
@pytest.mark.parametrize(
    ("lorder", "pagesize"), [("1234", 4096), ("4321", 4096), ("1234", 512), ("4321", 16384)]
)
def test_bdb_packages_equals_rpm_qa(
    rpmdb: RpmDb, tmp_path: Path, lorder: str, pagesize: int
) -> None:
    packages = _bdb_packages(rpmdb, tmp_path / "db", lorder, pagesize)
    # rpm's own read-only BDB backend agrees that this is a valid rpm database.
    rpm_says = [
        r for r in _query(packages.parent, "--define", "_db_backend bdb_ro") if r[0] != "gpg-pubkey"
    ]
    assert rpm_says == rpmdb.expected
    findings = run_analyzer(RpmAnalyzer(), BDB_PATH, packages.read_bytes(), chunk_size=65536)
    assert findings.unknowns == ()
    assert _rows(findings) == rpmdb.expected


# --- hostile headers, written by a minimal header writer ----------------------------------------


def make_header(entries: list[tuple[int, int, bytes, int]], *, il: int | None = None) -> bytes:
    """A header blob from (tag, type, data, count) entries; `il` overrides the entry count."""
    index, store = b"", b""
    for tag, type_, data, count in entries:
        if type_ == 4:
            store += b"\x00" * (-len(store) % 4)  # int32 data is 4-aligned, as rpm writes it
        index += struct.pack(">iIiI", tag, type_, len(store), count)
        store += data
    count = len(entries) if il is None else il
    return struct.pack(">II", count, len(store)) + index + store


def s(tag: int, text: str) -> tuple[int, int, bytes, int]:
    return (tag, 6, text.encode() + b"\x00", 1)


GOOD = [
    s(1000, "curl"),
    s(1001, "7.76.1"),
    s(1002, "26.el9"),
    s(1022, "x86_64"),
    s(1044, "curl-7.76.1-26.el9.src.rpm"),
    s(1014, "curl"),
]


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        pytest.param(b"", "shorter than its 8-byte preamble", id="empty"),
        pytest.param(b"\x00\x00\x00\x01", "shorter than", id="short"),
        pytest.param(struct.pack(">II", 0, 0), "0 index entries", id="no-entries"),
        pytest.param(struct.pack(">II", 0x7FFFFFFF, 4), "index entries", id="absurd-il"),
        pytest.param(struct.pack(">II", 1, 0xFFFFFFFF), "bytes of data", id="absurd-dl"),
        pytest.param(make_header(GOOD)[:-3], "truncated", id="truncated"),
        pytest.param(make_header(GOOD, il=50), "truncated", id="il-larger-than-index"),
        pytest.param(make_header(GOOD[1:]), "without NAME", id="missing-name"),
        pytest.param(make_header([s(1000, "a")]), "without VERSION, RELEASE", id="only-name"),
        pytest.param(make_header([(1000, 6, b"curl", 1)]), "not NUL-terminated", id="no-nul"),
        pytest.param(
            make_header([(1000, 4, b"\x00\x00\x00\x01", 1)]),
            "string is expected",
            id="name-wrong-type",
        ),
        pytest.param(
            make_header([*GOOD, (1003, 6, b"1\x00", 1)]), "int32 is expected", id="epoch-wrong-type"
        ),
        pytest.param(
            make_header([*GOOD, (1003, 4, b"\x00\x01", 1)]), "outside", id="epoch-out-of-store"
        ),
        pytest.param(
            struct.pack(">II", 1, 2) + struct.pack(">iIiI", 1000, 6, 999, 1) + b"a\x00",
            "offset 999 outside",
            id="offset-out-of-store",
        ),
        pytest.param(
            struct.pack(">II", 1, 2) + struct.pack(">iIiI", 1000, 6, -5, 1) + b"a\x00",
            "offset -5 outside",
            id="negative-offset",
        ),
        pytest.param(make_header([(1000, 8, b"a\x00", 0), *GOOD[1:]]), "count 0", id="zero-count"),
    ],
)
def test_hostile_headers(blob: bytes, match: str) -> None:
    with pytest.raises(HeaderError, match=match):
        parse_header(blob)


def test_header_fields() -> None:
    header = parse_header(make_header([*GOOD, (1003, 4, struct.pack(">I", 2), 1)]))
    assert (header.name, header.evr, header.arch, header.license, header.sourcerpm) == (
        "curl",
        "2:7.76.1-26.el9",
        "x86_64",
        "curl",
        "curl-7.76.1-26.el9.src.rpm",
    )
    # I18NSTRING / STRING_ARRAY: the first string counts; a huge declared count allocates nothing.
    header = parse_header(make_header([(1000, 9, b"n\x00x\x00", 0xFFFFFFFF), *GOOD[1:]]))
    assert header.name == "n"
    assert header.epoch is None


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("openssl-3.0.7-24.el9.src.rpm", ("openssl", "3.0.7-24.el9")),
        ("python3.11-3.11.5-1.el9_3.src.rpm", ("python3.11", "3.11.5-1.el9_3")),
        (
            "kernel-rt-5.14.0-362.8.1.rt14.343.el9_3.src.rpm",
            ("kernel-rt", "5.14.0-362.8.1.rt14.343.el9_3"),
        ),
        ("foo-1-2.nosrc.rpm", ("foo", "1-2")),
        ("", None),
        ("(none)", None),
        ("noversion.src.rpm", None),
        ("a-b.src.rpm", None),
        ("-1-2.src.rpm", None),
        ("foo-1-2.x86_64.rpm", None),
    ],
)
def test_split_source_rpm(filename: str, expected: tuple[str, str] | None) -> None:
    assert split_source_rpm(filename) == expected


def _sqlite_bytes(rows: list[tuple[int, bytes]], ddl: str | None = None) -> bytes:
    """An in-memory SQLite database serialized to bytes (nothing on disk)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            ddl
            or "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
        )
        if ddl is None:
            conn.executemany("INSERT INTO Packages VALUES (?, ?)", rows)
        conn.commit()
        return conn.serialize()
    finally:
        conn.close()


def test_bad_header_is_an_unknown_and_others_survive() -> None:
    blobs = [(1, make_header(GOOD)), (2, b"\x00\x00\x00\x09garbage"), (3, make_header(GOOD[1:]))]
    findings = run_analyzer(RpmAnalyzer(), SQLITE_PATH, _sqlite_bytes(blobs))
    assert [p.name for p in findings.packages] == ["curl"]
    reasons = [u.reason for u in findings.unknowns]
    assert reasons[0].startswith("header 2: ")
    assert reasons[1] == "header 3: header without NAME"


def test_many_bad_headers_are_summarised() -> None:
    findings = run_analyzer(
        RpmAnalyzer(), SQLITE_PATH, _sqlite_bytes([(i, b"x" * 20) for i in range(1, 101)])
    )
    assert len(findings.unknowns) == 21
    assert findings.unknowns[-1].reason == "80 more problems"


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "not an SQLite database", id="empty"),
        pytest.param(b"\x00" * 4096, "not an SQLite database", id="zeros"),
        pytest.param(
            b"SQLite format 3\x00" + b"\xff" * 200, "unreadable", id="garbage-after-magic"
        ),
        pytest.param(
            _sqlite_bytes([], "CREATE TABLE Other (x)"), "no Packages table", id="no-table"
        ),
        pytest.param(
            _sqlite_bytes(
                [],
                "CREATE VIEW Packages AS WITH RECURSIVE c(hnum, blob) AS "
                "(SELECT 1, x'00' UNION ALL SELECT hnum + 1, blob FROM c) SELECT * FROM c",
            ),
            "no Packages table",
            id="infinite-view",
        ),
    ],
)
def test_hostile_sqlite(data: bytes, match: str) -> None:
    with pytest.raises(AnalyzerError, match=match):
        run_analyzer(RpmAnalyzer(), SQLITE_PATH, data)


def test_truncated_sqlite_never_crashes() -> None:
    data = _sqlite_bytes([(i, make_header(GOOD) * 40) for i in range(1, 200)])
    for cut in (100, 1024, 4096, len(data) // 2, len(data) - 1):
        try:
            findings = run_analyzer(RpmAnalyzer(), SQLITE_PATH, data[:cut])
        except AnalyzerError as exc:
            message = str(exc)
        else:
            message = SQLITE_PATH
            assert all(p.name == "curl" for p in findings.packages)
        assert SQLITE_PATH in message


# --- hostile Berkeley DB files ------------------------------------------------------------------


def _meta(
    order: str = "<",
    magic: int = 0x061561,
    pagesize: int = 4096,
    enc: int = 0,
    ptype: int = 8,
    last: int = 0,
) -> bytes:
    page = bytearray(pagesize if pagesize in (512, 4096) else 512)
    struct.pack_into(order + "III", page, 8, 0, magic, 9)
    struct.pack_into(order + "IBB", page, 20, pagesize, enc, ptype)
    struct.pack_into(order + "I", page, 32, last)
    return bytes(page)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "too short", id="empty"),
        pytest.param(b"\x00" * 600, "no Berkeley DB hash magic", id="zeros"),
        pytest.param(_meta(magic=0x053162), "no Berkeley DB hash magic", id="btree-magic"),
        pytest.param(_meta(pagesize=1000), "page size 1000", id="bad-pagesize"),
        pytest.param(_meta(enc=1), "encrypted", id="encrypted"),
        pytest.param(_meta(ptype=13), "not a hash metadata page", id="wrong-page-type"),
    ],
)
def test_hostile_bdb_metadata(data: bytes, match: str) -> None:
    with pytest.raises(AnalyzerError, match=match):
        run_analyzer(RpmAnalyzer(), BDB_PATH, data)


def test_bdb_metadata_only_is_empty() -> None:
    for order in ("<", ">"):
        findings = run_analyzer(RpmAnalyzer(), BDB_PATH, _meta(order=order))
        assert findings.packages == ()
        assert findings.unknowns == ()


def test_bdb_last_page_beyond_file_is_reported() -> None:
    findings = run_analyzer(RpmAnalyzer(), BDB_PATH, _meta(last=0xFFFFFFFF))
    assert findings.packages == ()
    assert "file truncated" in findings.unknowns[0].reason


def _pages(data: bytes, order: str, pagesize: int, ptype: int) -> list[int]:
    return [n for n in range(1, len(data) // pagesize) if data[n * pagesize + 25] == ptype]


@pytest.mark.system
@pytest.mark.parametrize("lorder", ["1234", "4321"])
def test_corrupt_bdb_gives_unknowns_not_hangs(rpmdb: RpmDb, tmp_path: Path, lorder: str) -> None:
    order = "<" if lorder == "1234" else ">"
    data = _bdb_packages(rpmdb, tmp_path / "db", lorder, 4096).read_bytes()
    overflow = _pages(data, order, 4096, 7)
    assert overflow, "the fixture headers must need overflow pages"
    cases: dict[str, bytes] = {}
    # An overflow chain that loops back onto itself.
    looped = bytearray(data)
    struct.pack_into(order + "I", looped, overflow[0] * 4096 + 16, overflow[0])
    cases["loop"] = bytes(looped)
    # An overflow page whose declared length exceeds the page.
    long = bytearray(data)
    struct.pack_into(order + "H", long, overflow[0] * 4096 + 22, 60000)
    cases["length"] = bytes(long)
    # A hash page claiming more items than fit.
    items = bytearray(data)
    struct.pack_into(order + "H", items, _pages(data, order, 4096, 13)[0] * 4096 + 20, 5000)
    cases["items"] = bytes(items)
    cases["truncated"] = data[: len(data) // 2]
    for name, corrupt in cases.items():
        findings = run_analyzer(RpmAnalyzer(), BDB_PATH, corrupt)
        assert findings.unknowns, name
        assert len(findings.packages) < len(rpmdb.expected) + 1, name
        assert {p.name for p in findings.packages} <= {r[0] for r in rpmdb.expected}, name


# --- ndb (SUSE Packages.db) ---------------------------------------------------------------------


def make_ndb(blobs: list[tuple[int, bytes]], slot_pages: int = 1) -> bytes:
    """An ndb Packages.db laid out as rpm's lib/backend/ndb/rpmpkg.c writes it.

    No tool here writes ndb (Debian's rpm has no ndb backend), so this writer follows rpmpkg.c:
    header, slot pages, then blobs with head, padding and an Adler-32 tail.
    """
    slots = bytearray(slot_pages * 4096)
    struct.pack_into("<4sIIII", slots, 0, b"RpmP", 0, 7, slot_pages, len(blobs) + 1)
    for offset in range(32, len(slots), 16):
        slots[offset : offset + 4] = b"Slot"
    area = b""
    for number, (index, blob) in enumerate(blobs):
        block = (len(slots) + len(area)) // 16
        count = -(-(16 + len(blob) + 12) // 16)
        body = struct.pack("<4sIII", b"BlbS", index, 7, len(blob)) + blob
        body += b"\x00" * (count * 16 - 12 - len(body))
        area += body + struct.pack("<II4s", zlib.adler32(body), len(blob), b"BlbE")
        struct.pack_into("<4sIII", slots, 32 + 16 * number, b"Slot", index, block, count)
    return bytes(slots) + area


@pytest.mark.system
def test_ndb_with_real_headers(rpmdb: RpmDb) -> None:
    data = make_ndb(_sqlite_rows(rpmdb.root))
    findings = run_analyzer(RpmAnalyzer(), NDB_PATH, data, chunk_size=65536)
    assert findings.unknowns == ()
    assert _rows(findings) == rpmdb.expected


def _corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


NDB_GOOD = make_ndb([(1, make_header(GOOD)), (2, make_header([s(1000, "zlib"), *GOOD[1:]]))])
SECOND_BLOB = 4096 + 16 * (-(-(16 + len(make_header(GOOD)) + 12) // 16))


@pytest.mark.parametrize(
    ("data", "names", "reason"),
    [
        pytest.param(NDB_GOOD, ["curl", "zlib"], None, id="good"),
        pytest.param(
            _corrupt(NDB_GOOD, 4096 + 40, b"X"), ["zlib"], "checksum mismatch", id="checksum"
        ),
        pytest.param(_corrupt(NDB_GOOD, 4096, b"XXXX"), ["zlib"], "blob head", id="head-magic"),
        pytest.param(
            _corrupt(NDB_GOOD, SECOND_BLOB - 4, b"XXXX"), ["zlib"], "blob tail", id="tail-magic"
        ),
        pytest.param(
            _corrupt(NDB_GOOD, 32 + 12, struct.pack("<I", 5)),
            ["zlib"],
            "blob head does not match",
            id="wrong-count",
        ),
        pytest.param(
            _corrupt(NDB_GOOD, 32 + 8, struct.pack("<I", 0xFFFFFFF0)),
            ["zlib"],
            "outside the file",
            id="offset-beyond-file",
        ),
        pytest.param(
            _corrupt(NDB_GOOD, 32 + 8, struct.pack("<I", 3)),
            ["zlib"],
            "invalid entry",
            id="offset-in-slot-area",
        ),
        pytest.param(_corrupt(NDB_GOOD, 32 + 16, b"Junk"), ["curl"], "bad magic", id="slot-magic"),
        pytest.param(NDB_GOOD[: SECOND_BLOB + 20], ["curl"], "outside the file", id="truncated"),
    ],
)
def test_ndb_hostile_slots(data: bytes, names: list[str], reason: str | None) -> None:
    findings = run_analyzer(RpmAnalyzer(), NDB_PATH, data)
    assert [p.name for p in findings.packages] == names
    if reason is None:
        assert findings.unknowns == ()
    else:
        assert reason in findings.unknowns[0].reason


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "no rpm ndb magic", id="empty"),
        pytest.param(b"RpmP" + b"\x00" * 10, "no rpm ndb magic", id="short"),
        pytest.param(_corrupt(NDB_GOOD, 4, struct.pack("<I", 3)), "version 3", id="version"),
        pytest.param(_corrupt(NDB_GOOD, 12, struct.pack("<I", 0)), "0 slot pages", id="no-pages"),
        pytest.param(
            _corrupt(NDB_GOOD, 12, struct.pack("<I", 0xFFFFFFFF)), "slot pages", id="absurd-pages"
        ),
    ],
)
def test_ndb_hostile_header(data: bytes, match: str) -> None:
    with pytest.raises(AnalyzerError, match=match):
        run_analyzer(RpmAnalyzer(), NDB_PATH, data)


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (SQLITE_PATH, True),
        ("/usr/lib/sysimage/rpm/rpmdb.sqlite", True),
        (BDB_PATH, True),
        ("/usr/lib/sysimage/rpm/Packages", True),
        (NDB_PATH, True),
        ("/var/lib/rpm/Packages.db", True),
        ("/var/lib/rpm/rpmdb.sqlite-wal", False),
        ("/var/lib/rpm/Name", False),
        ("/home/user/Packages", False),
    ],
)
def test_wants(path: str, wanted: bool) -> None:
    assert RpmAnalyzer().wants(file_entry(path, b"")) is wanted


def test_rpmdb_limit_is_large() -> None:
    assert RpmAnalyzer().max_size >= 512 * 1024 * 1024
