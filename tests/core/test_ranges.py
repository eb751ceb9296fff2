"""OSV range evaluation: a table of `affected[]` entries (shapes from the OSV schema's examples and
real feeds) x installed versions -> affected through which range, with which fix, or not."""

from __future__ import annotations

import pytest

from tidegate.core.advisory import AffectedPackage, Event, EventKind, Range, RangeType
from tidegate.core.errors import VersionError
from tidegate.core.matching.ranges import (
    RangeEvaluation,
    RangeMatch,
    SkippedRange,
    evaluate,
    is_affected,
    kind_for_ecosystem,
)
from tidegate.core.versions import VersionKind

EventSpec = tuple[str, str]


def _range(kind: RangeType, *events: EventSpec) -> Range:
    return Range(type=kind, events=tuple(Event(EventKind(k), v) for k, v in events))


def _affected(
    ecosystem: str, *ranges: Range, versions: tuple[str, ...] = (), name: str = "pkg"
) -> AffectedPackage:
    return AffectedPackage(ecosystem=ecosystem, name=name, ranges=ranges, versions=versions)


ECO, SEMVER, GIT = RangeType.ECOSYSTEM, RangeType.SEMVER, RangeType.GIT

DEBIAN_OPENSSL = _affected(
    "Debian:12", _range(ECO, ("introduced", "0"), ("fixed", "3.0.11-1~deb12u2")), name="openssl"
)
# Two intervals, events deliberately out of order: evaluation sorts them.
NPM_TWO_INTERVALS = _affected(
    "npm",
    _range(
        SEMVER,
        ("introduced", "2.0.0"),
        ("fixed", "2.0.4"),
        ("introduced", "1.0.0"),
        ("fixed", "1.0.2"),
    ),
)
PYPI_LAST_AFFECTED = _affected(
    "PyPI", _range(ECO, ("introduced", "1.0"), ("last_affected", "1.4.2"))
)
GO_LIMITED = _affected("Go", _range(SEMVER, ("introduced", "0"), ("limit", "1.5.0")))
GO_LIMIT_STAR = _affected("Go", _range(SEMVER, ("introduced", "1.0.0"), ("limit", "*")))
GO_PSEUDO = _affected(
    "Go",
    _range(SEMVER, ("introduced", "0"), ("fixed", "0.0.0-20220314234659-1baeb1ce4c0b")),
    name="golang.org/x/crypto",
)
PYPI_LISTED = _affected("PyPI", versions=("1.2.3", "1.2.5"))
WITH_GIT = _affected(
    "PyPI",
    Range(
        type=GIT,
        events=(Event(EventKind.INTRODUCED, "0"), Event(EventKind.FIXED, "abc123")),
        repo="https://github.com/x/y",
    ),
    _range(ECO, ("introduced", "0"), ("fixed", "2.0")),
)
ALPINE = _affected("Alpine:v3.18", _range(ECO, ("introduced", "0"), ("fixed", "3.1.4-r1")))
RPM_EPOCH = _affected("Rocky Linux:9", _range(ECO, ("introduced", "0"), ("fixed", "1:2.3-4.el9")))
MAVEN_LOG4J = _affected(
    "Maven",
    _range(ECO, ("introduced", "2.0-beta9"), ("fixed", "2.3.1")),
    _range(ECO, ("introduced", "2.4"), ("fixed", "2.12.2")),
    _range(ECO, ("introduced", "2.13.0"), ("fixed", "2.15.0")),
    name="org.apache.logging.log4j:log4j-core",
)
UNFIXED = _affected("Debian:12", _range(ECO, ("introduced", "0")), name="glibc")
NO_INTRODUCED = _affected("PyPI", _range(ECO, ("fixed", "1.5")))
INTRODUCED_AFTER_FIX = _affected(
    "PyPI", _range(ECO, ("introduced", "0"), ("fixed", "1.0"), ("introduced", "1.5"))
)

DEB, NPM, PYPI, GO = VersionKind.DEB, VersionKind.NPM, VersionKind.PYPI, VersionKind.GOLANG
APK, RPM, MAVEN = VersionKind.APK, VersionKind.RPM, VersionKind.MAVEN


@pytest.mark.parametrize(
    ("affected", "kind", "version", "expected_range", "expected_fixed"),
    [
        (
            DEBIAN_OPENSSL,
            DEB,
            "3.0.9-1",
            "introduced 0, fixed 3.0.11-1~deb12u2",
            ("3.0.11-1~deb12u2",),
        ),
        (
            DEBIAN_OPENSSL,
            DEB,
            "3.0.11-1~deb12u1",
            "introduced 0, fixed 3.0.11-1~deb12u2",
            ("3.0.11-1~deb12u2",),
        ),
        (DEBIAN_OPENSSL, DEB, "3.0.11-1~deb12u2", None, ()),
        (DEBIAN_OPENSSL, DEB, "3.0.11-1", None, ()),
        (DEBIAN_OPENSSL, DEB, "1:1.0-1", None, ()),
        (NPM_TWO_INTERVALS, NPM, "0.9.0", None, ()),
        (NPM_TWO_INTERVALS, NPM, "1.0.0", "introduced 1.0.0, fixed 1.0.2", ("1.0.2",)),
        (NPM_TWO_INTERVALS, NPM, "v1.0.1", "introduced 1.0.0, fixed 1.0.2", ("1.0.2",)),
        (NPM_TWO_INTERVALS, NPM, "1.0.2", None, ()),
        (NPM_TWO_INTERVALS, NPM, "1.5.0", None, ()),
        (NPM_TWO_INTERVALS, NPM, "2.0.0-rc.1", None, ()),
        (NPM_TWO_INTERVALS, NPM, "2.0.3", "introduced 2.0.0, fixed 2.0.4", ("2.0.4",)),
        (NPM_TWO_INTERVALS, NPM, "2.0.4", None, ()),
        (NPM_TWO_INTERVALS, NPM, "3.0.0", None, ()),
        (PYPI_LAST_AFFECTED, PYPI, "0.9", None, ()),
        (PYPI_LAST_AFFECTED, PYPI, "1.0", "introduced 1.0, last_affected 1.4.2", ()),
        (PYPI_LAST_AFFECTED, PYPI, "1.4.2", "introduced 1.0, last_affected 1.4.2", ()),
        (PYPI_LAST_AFFECTED, PYPI, "1.4.2.post1", None, ()),
        (PYPI_LAST_AFFECTED, PYPI, "1.4.3", None, ()),
        (GO_LIMITED, GO, "v1.4.9", "introduced 0, limit 1.5.0", ()),
        (GO_LIMITED, GO, "v1.5.0", None, ()),
        (GO_LIMITED, GO, "v2.0.0+incompatible", None, ()),
        (GO_LIMIT_STAR, GO, "v3.0.0", "introduced 1.0.0", ()),
        (GO_LIMIT_STAR, GO, "v0.9.0", None, ()),
        (
            GO_PSEUDO,
            GO,
            "v0.0.0-20210711020723-a769d52b0f37",
            "introduced 0, fixed 0.0.0-20220314234659-1baeb1ce4c0b",
            ("0.0.0-20220314234659-1baeb1ce4c0b",),
        ),
        (GO_PSEUDO, GO, "v0.0.0-20220315160706-3147a52a75dd", None, ()),
        (GO_PSEUDO, GO, "v0.1.0", None, ()),
        (PYPI_LISTED, PYPI, "1.2.3", "listed version 1.2.3", ()),
        (PYPI_LISTED, PYPI, "1.2.5.0", "listed version 1.2.5", ()),
        (PYPI_LISTED, PYPI, "1.2.4", None, ()),
        (WITH_GIT, PYPI, "1.9", "introduced 0, fixed 2.0", ("2.0",)),
        (WITH_GIT, PYPI, "2.0", None, ()),
        (ALPINE, APK, "3.1.4-r0", "introduced 0, fixed 3.1.4-r1", ("3.1.4-r1",)),
        (ALPINE, APK, "3.1.4_rc1-r5", "introduced 0, fixed 3.1.4-r1", ("3.1.4-r1",)),
        (ALPINE, APK, "3.1.4-r1", None, ()),
        (ALPINE, APK, "3.1.4_p1-r0", None, ()),
        (RPM_EPOCH, RPM, "2.4-1.el9", "introduced 0, fixed 1:2.3-4.el9", ("1:2.3-4.el9",)),
        (RPM_EPOCH, RPM, "1:2.3-3.el9", "introduced 0, fixed 1:2.3-4.el9", ("1:2.3-4.el9",)),
        (RPM_EPOCH, RPM, "1:2.3-4.el9", None, ()),
        (RPM_EPOCH, RPM, "1:2.3-4.el9_1", None, ()),
        (MAVEN_LOG4J, MAVEN, "2.0-beta8", None, ()),
        (MAVEN_LOG4J, MAVEN, "2.0-beta9", "introduced 2.0-beta9, fixed 2.3.1", ("2.3.1",)),
        (MAVEN_LOG4J, MAVEN, "2.0", "introduced 2.0-beta9, fixed 2.3.1", ("2.3.1",)),
        (MAVEN_LOG4J, MAVEN, "2.3.1", None, ()),
        (MAVEN_LOG4J, MAVEN, "2.14.1", "introduced 2.13.0, fixed 2.15.0", ("2.15.0",)),
        (MAVEN_LOG4J, MAVEN, "2.15.0-rc1", "introduced 2.13.0, fixed 2.15.0", ("2.15.0",)),
        (MAVEN_LOG4J, MAVEN, "2.15.0", None, ()),
        (MAVEN_LOG4J, MAVEN, "2.17.1", None, ()),
        (UNFIXED, DEB, "2.36-9+deb12u4", "introduced 0", ()),
        (NO_INTRODUCED, PYPI, "1.4", "introduced 0, fixed 1.5", ("1.5",)),
        (NO_INTRODUCED, PYPI, "1.5", None, ()),
        (INTRODUCED_AFTER_FIX, PYPI, "0.5", "introduced 0, fixed 1.0", ("1.0",)),
        (INTRODUCED_AFTER_FIX, PYPI, "1.2", None, ()),
        (INTRODUCED_AFTER_FIX, PYPI, "1.5", "introduced 1.5", ()),
    ],
)
def test_range_table(
    affected: AffectedPackage,
    kind: VersionKind,
    version: str,
    expected_range: str | None,
    expected_fixed: tuple[str, ...],
) -> None:
    outcome = evaluate(version, affected, kind)
    assert outcome.skipped == ()
    if expected_range is None:
        assert outcome.match is None
        return
    assert outcome.match is not None
    assert outcome.match.range == expected_range
    assert outcome.match.fixed == expected_fixed
    assert is_affected(version, affected, kind) == outcome.match


def test_match_records_which_range_and_last_affected() -> None:
    match = is_affected("2.14.1", MAVEN_LOG4J, MAVEN)
    assert match == RangeMatch(
        range="introduced 2.13.0, fixed 2.15.0", fixed=("2.15.0",), range_index=2
    )
    bounded = is_affected("1.3", PYPI_LAST_AFFECTED, PYPI)
    assert bounded is not None
    assert bounded.last_affected == "1.4.2"
    assert bounded.fixed == ()
    listed = is_affected("1.2.3", PYPI_LISTED, PYPI)
    assert listed is not None
    assert listed.range_index is None


def test_invalid_version_in_a_record_skips_that_range_only() -> None:
    affected = _affected(
        "Debian:12",
        _range(ECO, ("introduced", "0"), ("fixed", "1:")),
        _range(ECO, ("introduced", "1.0"), ("fixed", "1.5-1")),
    )
    outcome = evaluate("1.2-1", affected, DEB)
    assert outcome.match is not None
    assert outcome.match.range == "introduced 1.0, fixed 1.5-1"
    assert outcome.match.range_index == 1
    assert len(outcome.skipped) == 1
    assert outcome.skipped[0].range_index == 0
    assert "'1:'" in outcome.skipped[0].reason
    assert "deb" in outcome.skipped[0].reason


def test_a_record_with_only_bad_ranges_matches_nothing_and_says_why() -> None:
    affected = _affected("PyPI", _range(ECO, ("introduced", "0"), ("fixed", "not-a-version!")))
    outcome = evaluate("1.0", affected, PYPI)
    assert outcome.match is None
    assert [s.range_index for s in outcome.skipped] == [0]
    assert "not-a-version!" in outcome.skipped[0].reason


def test_semver_range_on_a_non_semver_package_is_skipped_not_fatal() -> None:
    affected = _affected("PyPI", _range(SEMVER, ("introduced", "1.0.0"), ("fixed", "2.0.0")))
    assert is_affected("1.5.0", affected, PYPI) is not None
    outcome = evaluate("1.5.post1", affected, PYPI)
    assert outcome.match is None
    assert outcome.skipped[0].range_index == 0


def test_invalid_listed_versions_are_reported_once() -> None:
    affected = _affected("PyPI", versions=("1.0", "bogus one", "bogus two"))
    outcome = evaluate("2.0", affected, PYPI)
    assert outcome.match is None
    assert outcome.skipped == (
        SkippedRange(None, "invalid pypi versions listed: 'bogus one', 'bogus two'"),
    )


@pytest.mark.parametrize(
    "affected",
    [
        _affected("PyPI"),
        _affected("PyPI", Range(type=ECO, events=())),
    ],
)
def test_empty_entries_match_nothing_and_are_reported(affected: AffectedPackage) -> None:
    outcome = evaluate("1.0", affected, PYPI)
    assert outcome.match is None
    assert len(outcome.skipped) == 1


def test_only_git_ranges_match_nothing_silently() -> None:
    affected = _affected("PyPI", _range(GIT, ("introduced", "0"), ("fixed", "deadbeef")))
    assert evaluate("1.0", affected, PYPI) == RangeEvaluation(match=None, skipped=())


def test_a_bad_installed_version_is_an_error() -> None:
    with pytest.raises(VersionError, match="not-a-version"):
        evaluate("not-a-version", PYPI_LAST_AFFECTED, PYPI)


@pytest.mark.parametrize(
    ("ecosystem", "kind"),
    [
        ("Debian:12", VersionKind.DEB),
        ("Debian", VersionKind.DEB),
        ("Ubuntu:22.04:LTS", VersionKind.DEB),
        ("Ubuntu:Pro:18.04:LTS", VersionKind.DEB),
        ("Alpine:v3.18", VersionKind.APK),
        ("Wolfi", VersionKind.APK),
        ("Red Hat:enterprise_linux:9::appstream", VersionKind.RPM),
        ("AlmaLinux:9", VersionKind.RPM),
        ("Rocky Linux:9", VersionKind.RPM),
        ("openSUSE:Leap 15.5", VersionKind.RPM),
        ("SUSE:Linux Enterprise Server 15 SP5", VersionKind.RPM),
        ("Mageia:9", VersionKind.RPM),
        ("PyPI", VersionKind.PYPI),
        ("npm", VersionKind.NPM),
        ("Go", VersionKind.GOLANG),
        ("Maven", VersionKind.MAVEN),
        ("crates.io", VersionKind.SEMVER),
        ("RubyGems", None),
        ("NuGet", None),
        ("", None),
    ],
)
def test_kind_for_ecosystem(ecosystem: str, kind: VersionKind | None) -> None:
    assert kind_for_ecosystem(ecosystem) == kind
