"""DpkgAnalyzer: deb822 parsing, installed-only, source packages, distroless status.d, and the
catalogue of a real debootstrap rootfs against dpkg-query."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from util import LAYER, file_entry, run_analyzer

from tidegate.analyzers.dpkg import DpkgAnalyzer, parse_deb822
from tidegate.core.models import Location, PackageType

FIXTURES = Path(__file__).parent / "fixtures_os"
STATUS = "/var/lib/dpkg/status"


def _rows(data: bytes, path: str = STATUS) -> list[tuple[str | None, ...]]:
    findings = run_analyzer(DpkgAnalyzer(), path, data)
    return [(p.name, p.version, p.source_name, p.source_version, p.arch) for p in findings.packages]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Package: bash\nStatus: install ok installed\nArchitecture: amd64\n"
            "Version: 5.2.15-2+b2\n",
            [("bash", "5.2.15-2+b2", "bash", "5.2.15-2+b2", "amd64")],
            id="no-source-field",
        ),
        pytest.param(
            "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n"
            "Source: openssl\nVersion: 3.0.11-1~deb12u2\n",
            [("libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2", "amd64")],
            id="source-without-version",
        ),
        pytest.param(
            "Package: libuuid1\nStatus: install ok installed\nArchitecture: amd64\n"
            "Source: util-linux (2.38.1-5)\nVersion: 2.38.1-5+b1\n",
            [("libuuid1", "2.38.1-5+b1", "util-linux", "2.38.1-5", "amd64")],
            id="binnmu-source-version",
        ),
        pytest.param(
            "Package: perl-base\nStatus: hold ok installed\nArchitecture: amd64\n"
            "Source: perl\nVersion: 1:5.36.0-7+deb12u1\n",
            [("perl-base", "1:5.36.0-7+deb12u1", "perl", "1:5.36.0-7+deb12u1", "amd64")],
            id="hold-and-epoch",
        ),
        pytest.param(
            "Package: old\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
            "Package: gone\nStatus: purge ok not-installed\n\n"
            "Package: half\nStatus: install reinstreq half-installed\nVersion: 2\n\n"
            "Package: unpacked\nStatus: install ok unpacked\nVersion: 3\n",
            [],
            id="not-installed-states-skipped",
        ),
        pytest.param(
            "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n"
            "Description: x\r\n continued\r\n .\r\n\r\n"
            "Package: b\r\nStatus: install ok installed\r\nVersion: 2\r\n",
            [("a", "1", "a", "1", None), ("b", "2", "b", "2", None)],
            id="crlf-and-continuations",
        ),
        pytest.param(
            "\n\n \nPackage: a\nStatus: install ok installed\nVersion: 1\n \t\n\n\n"
            "Package: b\nStatus: install ok installed\nVersion: 2",
            [("a", "1", "a", "1", None), ("b", "2", "b", "2", None)],
            id="blank-lines-and-no-final-newline",
        ),
        pytest.param(
            "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n\n"
            "Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9\n",
            [
                ("libc6", "2.36-9", "libc6", "2.36-9", "amd64"),
                ("libc6", "2.36-9", "libc6", "2.36-9", "i386"),
            ],
            id="multiarch-same-name",
        ),
    ],
)
def test_status_paragraphs(text: str, expected: list[tuple[str | None, ...]]) -> None:
    assert _rows(text.encode()) == expected


@pytest.mark.parametrize(
    ("text", "good", "reason"),
    [
        pytest.param(
            "Package: a\nStatus: install ok installed\n\n"
            "Package: b\nStatus: install ok installed\nVersion: 2\n",
            ["b"],
            "line 1 (package 'a'): missing or invalid Version",
            id="missing-version",
        ),
        pytest.param(
            "Status: install ok installed\nVersion: 1\n\n"
            "Package: b\nStatus: install ok installed\nVersion: 2\n",
            ["b"],
            "line 1: missing or invalid Package",
            id="missing-package",
        ),
        pytest.param(
            "Package: b\nStatus: install ok installed\nVersion: 2\n\n"
            "Package: c\nStatus: install ok installed\nVersion: 3\nSource: (oops)\n",
            ["b"],
            "line 5 (package 'c'): malformed Source",
            id="malformed-source",
        ),
    ],
)
def test_bad_paragraph_is_an_unknown_for_that_paragraph_only(
    text: str, good: list[str], reason: str
) -> None:
    findings = run_analyzer(DpkgAnalyzer(), STATUS, text.encode())
    assert [p.name for p in findings.packages] == good
    assert len(findings.unknowns) == 1
    assert reason in findings.unknowns[0].reason
    assert findings.unknowns[0].where == STATUS
    assert findings.unknowns[0].layer == LAYER


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage without colon\n\xff\xfe\n   \n", id="garbage"),
        pytest.param(b"Package: x\n" * 100_000, id="one-huge-paragraph"),
    ],
)
def test_hostile_status_never_crashes(data: bytes) -> None:
    findings = run_analyzer(DpkgAnalyzer(), STATUS, data)
    assert findings.packages == ()


def test_many_bad_paragraphs_are_summarised() -> None:
    data = b"".join(b"Package: p%d\nStatus: install ok installed\n\n" % i for i in range(500))
    findings = run_analyzer(DpkgAnalyzer(), STATUS, data)
    assert len(findings.unknowns) == 21
    assert findings.unknowns[-1].reason == "480 more malformed paragraphs"


def test_binary_status_is_an_analyzer_error() -> None:
    from tidegate.analyzers.interface import AnalyzerError

    with pytest.raises(AnalyzerError, match="NUL"):
        run_analyzer(DpkgAnalyzer(), STATUS, b"Package: a\x00\x01")


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        (STATUS, True),
        ("/var/lib/dpkg/status.d/libc6", True),
        ("/var/lib/dpkg/status.d/libc6.md5sums", False),
        ("/var/lib/dpkg/status.d/sub/x", False),
        ("/var/lib/dpkg/status-old", False),
        ("/var/lib/dpkg/available", False),
        ("/usr/share/doc/status", False),
    ],
)
def test_wants(path: str, wanted: bool) -> None:
    assert DpkgAnalyzer().wants(file_entry(path, b"x")) is wanted


def test_distroless_status_d() -> None:
    analyzer = DpkgAnalyzer()
    rows = []
    for file in sorted((FIXTURES / "distroless-status.d").iterdir()):
        path = f"/var/lib/dpkg/status.d/{file.name}"
        if not analyzer.wants(file_entry(path, b"")):
            continue
        findings = run_analyzer(analyzer, path, file.read_bytes())
        assert findings.unknowns == ()
        for p in findings.packages:
            assert p.locations == (Location(path, LAYER),)
            assert p.type is PackageType.DEB
            assert p.purl == ""
            rows.append((p.name, p.version, p.source_name, p.source_version, p.arch))
    assert rows == [
        ("base-files", "12.4+deb12u5", "base-files", "12.4+deb12u5", "amd64"),
        ("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4", "amd64"),
        ("libgcc-s1", "12.2.0-14", "gcc-12", "12.2.0-14", "amd64"),
        ("libssl3", "3.0.11-1~deb12u2", "openssl", "3.0.11-1~deb12u2", "amd64"),
        ("tzdata", "2024a-0+deb12u1", "tzdata", "2024a-0+deb12u1", "all"),
    ]


def test_parse_deb822_keeps_continuations() -> None:
    (para,) = parse_deb822("Package: a\nDescription: short\n long line\n .\n more\n")
    assert para.fields["description"] == "short\nlong line\n.\nmore"


@pytest.mark.system
@pytest.mark.slow
def test_debootstrap_catalogue_equals_dpkg_query(debootstrap_bookworm: Path) -> None:
    if shutil.which("dpkg-query") is None:
        pytest.skip("dpkg-query is not installed")
    admin = debootstrap_bookworm / "var" / "lib" / "dpkg"
    fmt = (
        "${db:Status-Status}\t${Package}\t${Version}\t${source:Package}\t${source:Version}"
        "\t${Architecture}\n"
    )
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admin}", "-W", "-f", fmt],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    expected = sorted(
        tuple(fields[1:])
        for line in out.splitlines()
        if (fields := line.split("\t"))[0] == "installed"
    )
    findings = run_analyzer(
        DpkgAnalyzer(), STATUS, (admin / "status").read_bytes(), chunk_size=65536
    )
    got = sorted(
        (p.name, p.version, p.source_name, p.source_version, p.arch) for p in findings.packages
    )
    assert findings.unknowns == ()
    assert len(got) > 80  # minbase bookworm has ~90 packages
    assert got == expected
    assert any(name != src for name, _, src, _, _ in got)  # source mapping really exercised
