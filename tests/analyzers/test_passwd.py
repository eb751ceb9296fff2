"""PasswdAnalyzer: users and groups, with the malformed lines real images carry."""

from __future__ import annotations

import pytest
from util import LAYER, file_entry, run_analyzer

from tidegate.analyzers.interface import AnalyzerError
from tidegate.analyzers.passwd import PasswdAnalyzer
from tidegate.core.models import GroupEntry, Unknown, UserEntry

DEBIAN_PASSWD = b"""root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
_apt:x:42:65534::/nonexistent:/usr/sbin/nologin
"""

ALPINE_GROUP = b"""root:x:0:root
bin:x:1:root,bin,daemon
wheel:x:10:root
nogroup:x:65533:
nobody:x:65534:
"""


@pytest.mark.parametrize(
    ("data", "users"),
    [
        pytest.param(
            DEBIAN_PASSWD,
            [
                UserEntry("root", 0, 0, "/root", "/bin/bash"),
                UserEntry("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"),
                UserEntry("bin", 2, 2, "/bin", "/usr/sbin/nologin"),
                UserEntry("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
                UserEntry("_apt", 42, 65534, "/nonexistent", "/usr/sbin/nologin"),
            ],
            id="debian",
        ),
        pytest.param(
            b"# users\n\n   \nroot:x:0:0:root:/root:/bin/sh\r\n"
            b"+::::::\n"  # NIS include
            b"short:x:1\n"
            b"baduid:x:abc:0::/:/bin/sh\n"
            b"neg:x:-1:0::/:/bin/sh\n"
            b"huge:x:99999999999:0::/:/bin/sh\n"
            b"toomany:x:1:1:a:b:c:d\n"
            b":x:5:5::/:/bin/sh\n"
            b"app:x:1000:1000::/home/app:\n",
            [
                UserEntry("root", 0, 0, "/root", "/bin/sh"),
                UserEntry("app", 1000, 1000, "/home/app"),
            ],
            id="malformed-lines-skipped",
        ),
        pytest.param(b"", [], id="empty"),
        pytest.param(b"# only a comment\n\n", [], id="only-comments"),
    ],
)
def test_passwd(data: bytes, users: list[UserEntry]) -> None:
    findings = run_analyzer(PasswdAnalyzer(), "/etc/passwd", data)
    assert list(findings.users) == users
    assert findings.unknowns == ()
    assert findings.groups == ()


def test_group() -> None:
    findings = run_analyzer(PasswdAnalyzer(), "/etc/group", ALPINE_GROUP + b"broken line\n")
    assert list(findings.groups) == [
        GroupEntry("root", 0),
        GroupEntry("bin", 1),
        GroupEntry("wheel", 10),
        GroupEntry("nogroup", 65533),
        GroupEntry("nobody", 65534),
    ]
    assert findings.users == ()
    assert findings.unknowns == ()


@pytest.mark.parametrize(
    ("path", "data", "reason"),
    [
        ("/etc/passwd", b"<html>not a passwd</html>\nfoo\n", "none of its 2 lines"),
        ("/etc/group", b"root:x:zero:\n", "none of its 1 lines"),
    ],
)
def test_nothing_parses_is_an_unknown(path: str, data: bytes, reason: str) -> None:
    findings = run_analyzer(PasswdAnalyzer(), path, data)
    assert findings.users == ()
    assert findings.groups == ()
    (unknown,) = findings.unknowns
    assert unknown == Unknown(path, unknown.reason, "passwd", LAYER)
    assert reason in unknown.reason


def test_binary_is_an_analyzer_error() -> None:
    with pytest.raises(AnalyzerError, match="binary"):
        run_analyzer(PasswdAnalyzer(), "/etc/passwd", b"root:x:0:0\x00")


@pytest.mark.parametrize(
    ("path", "wanted"),
    [("/etc/passwd", True), ("/etc/group", True), ("/etc/passwd-", False), ("/etc/shadow", False)],
)
def test_wants(path: str, wanted: bool) -> None:
    assert PasswdAnalyzer().wants(file_entry(path, b"")) is wanted
