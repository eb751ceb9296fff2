"""ApkAnalyzer: the apk installed database of an Alpine 3.18 image, and hostile variants."""

from __future__ import annotations

from pathlib import Path

import pytest
from util import LAYER, file_entry, run_analyzer

from tidegate.analyzers.apk import ApkAnalyzer
from tidegate.analyzers.interface import AnalyzerError
from tidegate.core.models import Location, PackageType

INSTALLED = (Path(__file__).parent / "fixtures_os" / "alpine-3.18-installed").read_bytes()


@pytest.mark.parametrize("path", ["/lib/apk/db/installed", "/usr/lib/apk/db/installed"])
def test_alpine_installed_db(path: str) -> None:
    findings = run_analyzer(ApkAnalyzer(), path, INSTALLED, chunk_size=100)
    assert findings.unknowns == ()
    rows = {(p.name, p.version, p.source_name, p.source_version, p.arch) for p in findings.packages}
    assert len(findings.packages) == 14
    assert {
        ("musl", "1.2.4-r2", "musl", "1.2.4-r2", "x86_64"),
        ("busybox", "1.36.1-r5", "busybox", "1.36.1-r5", "x86_64"),
        ("libcrypto3", "3.1.4-r1", "openssl", "3.1.4-r1", "x86_64"),
        ("libssl3", "3.1.4-r1", "openssl", "3.1.4-r1", "x86_64"),
        ("zlib", "1.2.13-r1", "zlib", "1.2.13-r1", "x86_64"),
        ("scanelf", "1.3.7-r1", "pax-utils", "1.3.7-r1", "x86_64"),
        ("libc-utils", "0.7.2-r5", "libc-dev", "0.7.2-r5", "x86_64"),
    } <= rows
    by_name = {p.name: p for p in findings.packages}
    assert by_name["ca-certificates-bundle"].licenses == ("MPL-2.0 AND MIT",)
    assert by_name["zlib"].licenses == ("Zlib",)
    for p in findings.packages:
        assert p.type is PackageType.APK
        assert p.found_by == "apk"
        assert p.locations == (Location(path, LAYER),)
        assert p.purl == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("P:a\nV:1-r0\n", [("a", "1-r0", "a", None, ())], id="minimal-no-origin"),
        pytest.param(
            "P:a\r\nV:1-r0\r\nA:aarch64\r\nL:MIT\r\no:src\r\n\r\nP:b\r\nV:2-r1\r\n",
            [("a", "1-r0", "src", "aarch64", ("MIT",)), ("b", "2-r1", "b", None, ())],
            id="crlf",
        ),
        pytest.param(
            "\n\nP:a\nV:1\nF:usr\nR:P:not-a-field\n\n\n\nP:b\nV:2",
            [("a", "1", "a", None, ()), ("b", "2", "b", None, ())],
            id="blank-runs-and-no-final-newline",
        ),
        pytest.param(
            "P:a\nV:1\nP:b\nV:2\n", [("a", "1", "a", None, ())], id="repeated-field-first-wins"
        ),
        pytest.param("", [], id="empty"),
    ],
)
def test_records(text: str, expected: list[tuple[object, ...]]) -> None:
    findings = run_analyzer(ApkAnalyzer(), "/lib/apk/db/installed", text.encode())
    got = [(p.name, p.version, p.source_name, p.arch, p.licenses) for p in findings.packages]
    assert got == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("V:1\nA:x86_64\n\nP:ok\nV:1\n", "record at line 1: no P (name)"),
        ("P:ok\nV:1\n\nP:broken\nA:x86_64\n", "record at line 4: no V (version) of 'broken'"),
    ],
)
def test_incomplete_record_is_an_unknown(text: str, reason: str) -> None:
    findings = run_analyzer(ApkAnalyzer(), "/lib/apk/db/installed", text.encode())
    assert [p.name for p in findings.packages] == ["ok"]
    assert [u.reason for u in findings.unknowns] == [reason]


def test_garbage_gives_summarised_unknowns() -> None:
    data = b"\n\n".join(b"garbage %d" % i for i in range(100))
    findings = run_analyzer(ApkAnalyzer(), "/lib/apk/db/installed", data)
    assert findings.packages == ()
    assert len(findings.unknowns) == 21
    assert findings.unknowns[-1].reason == "80 more malformed records"


def test_binary_is_an_analyzer_error() -> None:
    with pytest.raises(AnalyzerError, match="binary"):
        run_analyzer(ApkAnalyzer(), "/lib/apk/db/installed", b"\x1f\x8b\x08\x00\x00")


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("/lib/apk/db/installed", True),
        ("/usr/lib/apk/db/installed", True),
        ("/lib/apk/db/scripts.tar", False),
        ("/lib/apk/db/installed.new", False),
        ("/etc/apk/world", False),
    ],
)
def test_wants(path: str, wanted: bool) -> None:
    assert ApkAnalyzer().wants(file_entry(path, b"")) is wanted
