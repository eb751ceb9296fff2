"""OSReleaseAnalyzer: the os-release grammar and every fallback release file."""

from __future__ import annotations

import pytest
from util import file_entry, run_analyzer

from tidegate.analyzers.interface import AnalyzerError
from tidegate.analyzers.os_release import PRIORITY, OSReleaseAnalyzer, parse_os_release
from tidegate.core.models import OSInfo

DEBIAN_12 = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

ALPINE_318 = b"""NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.18.4
PRETTY_NAME="Alpine Linux v3.18"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""

UBI_9 = b"""NAME="Red Hat Enterprise Linux"
VERSION="9.3 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.3"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
"""

UBUNTU_2204 = b"""PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.3 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"""

JESSIE = b"""PRETTY_NAME="Debian GNU/Linux 8 (jessie)"
NAME="Debian GNU/Linux"
VERSION_ID="8"
VERSION="8 (jessie)"
ID=debian
"""

ROCKY_8 = b"""NAME="Rocky Linux"
VERSION="8.9 (Green Obsidian)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.9"
PRETTY_NAME="Rocky Linux 8.9 (Green Obsidian)"
"""


@pytest.mark.parametrize(
    ("path", "data", "expected"),
    [
        (
            "/etc/os-release",
            DEBIAN_12,
            OSInfo(
                "debian", "12", "Debian GNU/Linux 12 (bookworm)", "bookworm", (), "/etc/os-release"
            ),
        ),
        (
            "/usr/lib/os-release",
            ALPINE_318,
            OSInfo("alpine", "3.18.4", "Alpine Linux v3.18", "", (), "/usr/lib/os-release"),
        ),
        (
            "/etc/os-release",
            UBI_9,
            OSInfo(
                "rhel",
                "9.3",
                "Red Hat Enterprise Linux 9.3 (Plow)",
                "",
                ("fedora",),
                "/etc/os-release",
            ),
        ),
        (
            "/etc/os-release",
            UBUNTU_2204,
            OSInfo(
                "ubuntu", "22.04", "Ubuntu 22.04.3 LTS", "jammy", ("debian",), "/etc/os-release"
            ),
        ),
        (
            "/etc/os-release",
            ROCKY_8,
            OSInfo(
                "rocky",
                "8.9",
                "Rocky Linux 8.9 (Green Obsidian)",
                "",
                ("rhel", "centos", "fedora"),
                "/etc/os-release",
            ),
        ),
        (
            "/etc/os-release",
            JESSIE,
            OSInfo("debian", "8", "Debian GNU/Linux 8 (jessie)", "jessie", (), "/etc/os-release"),
        ),
        (
            "/etc/os-release",
            b"NAME=Minimal\n",
            OSInfo("linux", "", "Minimal", "", (), "/etc/os-release"),
        ),
        (
            "/etc/alpine-release",
            b"3.18.4\n",
            OSInfo("alpine", "3.18.4", "Alpine Linux v3.18", "", (), "/etc/alpine-release"),
        ),
        (
            "/etc/alpine-release",
            b"3.20.0_alpha20231219\n",
            OSInfo(
                "alpine",
                "3.20.0_alpha20231219",
                "Alpine Linux v3.20",
                "",
                (),
                "/etc/alpine-release",
            ),
        ),
        (
            "/etc/debian_version",
            b"12.4\n",
            OSInfo(
                "debian",
                "12",
                "Debian GNU/Linux 12 (bookworm)",
                "bookworm",
                (),
                "/etc/debian_version",
            ),
        ),
        (
            "/etc/debian_version",
            b"8.11\n",
            OSInfo(
                "debian", "8", "Debian GNU/Linux 8 (jessie)", "jessie", (), "/etc/debian_version"
            ),
        ),
        (
            "/etc/debian_version",
            b"trixie/sid\n",
            OSInfo(
                "debian", "", "Debian GNU/Linux trixie/sid", "trixie", (), "/etc/debian_version"
            ),
        ),
        (
            "/etc/centos-release",
            b"CentOS Linux release 7.9.2009 (Core)\n",
            OSInfo(
                "centos",
                "7",
                "CentOS Linux release 7.9.2009 (Core)",
                "core",
                ("rhel", "fedora"),
                "/etc/centos-release",
            ),
        ),
        (
            "/etc/redhat-release",
            b"Red Hat Enterprise Linux release 8.9 (Ootpa)\n",
            OSInfo(
                "rhel",
                "8.9",
                "Red Hat Enterprise Linux release 8.9 (Ootpa)",
                "ootpa",
                ("fedora",),
                "/etc/redhat-release",
            ),
        ),
        (
            "/etc/redhat-release",
            b"Red Hat Enterprise Linux Server release 6.10 (Santiago)\n",
            OSInfo(
                "rhel",
                "6.10",
                "Red Hat Enterprise Linux Server release 6.10 (Santiago)",
                "santiago",
                ("fedora",),
                "/etc/redhat-release",
            ),
        ),
        (
            "/etc/system-release",
            b"Amazon Linux release 2023 (Amazon Linux)\n",
            OSInfo(
                "amzn",
                "2023",
                "Amazon Linux release 2023 (Amazon Linux)",
                "amazon linux",
                ("centos", "rhel", "fedora"),
                "/etc/system-release",
            ),
        ),
        (
            "/etc/redhat-release",
            b"Fedora release 39 (Thirty Nine)\n",
            OSInfo(
                "fedora",
                "39",
                "Fedora release 39 (Thirty Nine)",
                "thirty nine",
                (),
                "/etc/redhat-release",
            ),
        ),
        (
            "/etc/redhat-release",
            b"AlmaLinux release 9.3 (Shamrock Pearl)\n",
            OSInfo(
                "almalinux",
                "9.3",
                "AlmaLinux release 9.3 (Shamrock Pearl)",
                "shamrock pearl",
                ("rhel", "centos", "fedora"),
                "/etc/redhat-release",
            ),
        ),
        (
            "/etc/redhat-release",
            b"CentOS Stream release 9\n",
            OSInfo(
                "centos",
                "9",
                "CentOS Stream release 9",
                "",
                ("rhel", "fedora"),
                "/etc/redhat-release",
            ),
        ),
        (
            "/etc/lsb-release",
            b"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n"
            b'DISTRIB_DESCRIPTION="Ubuntu 22.04.3 LTS"\n',
            OSInfo("ubuntu", "22.04", "Ubuntu 22.04.3 LTS", "jammy", (), "/etc/lsb-release"),
        ),
    ],
)
def test_release_files(path: str, data: bytes, expected: OSInfo) -> None:
    findings = run_analyzer(OSReleaseAnalyzer(), path, data, chunk_size=7)
    assert findings.os == expected
    assert findings.analyzer == "os-release"
    assert findings.path == path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('A="x y"', {"A": "x y"}, id="double-quoted"),
        pytest.param("A='x \"y\" $z'", {"A": 'x "y" $z'}, id="single-quoted-literal"),
        pytest.param(
            'A="a \\"b\\" \\\\ \\$c \\`d\\` \\n"', {"A": 'a "b" \\ $c `d` \\n'}, id="escapes"
        ),
        pytest.param("A=plain\\ word", {"A": "plain word"}, id="unquoted-escape"),
        pytest.param('A="multi\\\nline"', {"A": "multiline"}, id="continuation-in-quotes"),
        pytest.param("A=one\\\ntwo\nB=3", {"A": "onetwo", "B": "3"}, id="continuation-unquoted"),
        pytest.param("A=\"x\"'y'z", {"A": "xyz"}, id="concatenation"),
        pytest.param("# comment\n  ; other\n\nA=1  \nB=", {"A": "1", "B": ""}, id="comments-blank"),
        pytest.param("no equals\n1BAD=x\nA-B=y\nOK=1", {"OK": "1"}, id="malformed-skipped"),
        pytest.param("  A = 1\nexport B=2", {"A": "1", "B": "2"}, id="spaces-and-export"),
        pytest.param('A="unterminated', {"A": "unterminated"}, id="unterminated-quote"),
        pytest.param("A=1\nA=2", {"A": "2"}, id="last-wins"),
        pytest.param("A=1\r\nB='two'\r\n", {"A": "1", "B": "two"}, id="crlf"),
    ],
)
def test_os_release_grammar(text: str, expected: dict[str, str]) -> None:
    assert parse_os_release(text) == expected


@pytest.mark.parametrize(
    ("path", "data", "match"),
    [
        ("/etc/os-release", b"", "no KEY=VALUE"),
        ("/etc/os-release", b"just text\n", "no KEY=VALUE"),
        ("/etc/os-release", b"ID=\x00\x01", "binary"),
        ("/etc/alpine-release", b"", "empty"),
        ("/etc/alpine-release", b"<html>", "not an Alpine version"),
        ("/etc/debian_version", b"!!\n", "not a Debian version"),
        ("/etc/redhat-release", b"Something else\n", "release <version>"),
        ("/etc/lsb-release", b"DISTRIB_RELEASE=1\n", "no DISTRIB_ID"),
    ],
)
def test_malformed_release_files(path: str, data: bytes, match: str) -> None:
    with pytest.raises(AnalyzerError, match=match):
        run_analyzer(OSReleaseAnalyzer(), path, data)


def test_too_large_is_an_unknown() -> None:
    findings = run_analyzer(OSReleaseAnalyzer(), "/etc/os-release", b"A=" + b"x" * 100_000)
    assert findings.os is None
    assert "larger than" in findings.unknowns[0].reason


def test_wants_exactly_the_priority_files() -> None:
    analyzer = OSReleaseAnalyzer()
    for path in PRIORITY:
        assert analyzer.wants(file_entry(path, b""))
    for path in ("/etc/os-release.bak", "/usr/share/os-release", "/etc/issue", "/etc/passwd"):
        assert not analyzer.wants(file_entry(path, b""))
