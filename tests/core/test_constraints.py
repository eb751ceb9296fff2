"""Package deny-list version constraints: grammar, each ecosystem's order, hostile input."""

from __future__ import annotations

import pytest

from tidegate.core.constraints import (
    Comparison,
    ConstraintError,
    Op,
    parse_constraint,
    satisfies,
    version_kind,
)
from tidegate.core.errors import TidegateError, VersionError
from tidegate.core.models import PackageType
from tidegate.core.versions import VersionKind

CASES = [
    # constraint, ecosystem, version, expected
    (">=1.0, <1.2.5", PackageType.PYPI, "1.2.4", True),
    (">=1.0, <1.2.5", PackageType.PYPI, "1.2.5", False),
    (">=1.0, <1.2.5", PackageType.PYPI, "0.9", False),
    (">=1.0, <1.2.5", PackageType.PYPI, "1.0", True),
    (">=1.0, <1.2.5", PackageType.PYPI, "1.2.5rc1", True),  # PEP 440: rc before final
    ("==2.3", PackageType.PYPI, "2.3.0", True),  # PEP 440: 2.3 == 2.3.0
    ("=2.3", PackageType.NPM, "2.3.1", False),
    ("2.3.1", PackageType.NPM, "2.3.1", True),  # no operator: equality
    ("!=1.0", PackageType.NPM, "1.0.0", False),  # npm leniency: "1.0" is "1.0.0"
    ("!=1.0", PackageType.PYPI, "1.0.1", True),
    ("<3", PackageType.GOLANG, "v2.9.0", True),
    ("<3", PackageType.GOLANG, "v3.0.0", False),
    ("<= 1.2.3 , > 1.0.0", PackageType.NPM, "1.2.3", True),  # spaces around operators
    ("<1.0 || >=2.0, <2.4", PackageType.NPM, "0.5.0", True),
    ("<1.0 || >=2.0, <2.4", PackageType.NPM, "1.5.0", False),
    ("<1.0 || >=2.0, <2.4", PackageType.NPM, "2.3.9", True),
    ("<1.0 || >=2.0, <2.4", PackageType.NPM, "2.4.0", False),
    # dpkg: epochs and tildes order differently from a naive string compare.
    ("<3.0.11-1~deb12u2", PackageType.DEB, "3.0.11-1~deb12u1", True),
    ("<3.0.11-1~deb12u2", PackageType.DEB, "3.0.11-1", False),
    ("<2.0", PackageType.DEB, "1:1.0-1", False),
    (">=1.36.0-r0", PackageType.APK, "1.36.1-r2", True),
    ("<1.1.1k-1.el8", PackageType.RPM, "1.1.1g-15.el8", True),
    ("<2.17.1", PackageType.MAVEN, "2.14.1", True),
    ("<2.17.1", PackageType.MAVEN, "2.17.1", False),
    ("<2.17.1", PackageType.MAVEN, "2.17.1-SNAPSHOT", True),
]


@pytest.mark.parametrize(("constraint", "ptype", "version", "expected"), CASES)
def test_satisfies(constraint: str, ptype: PackageType, version: str, expected: bool) -> None:
    assert satisfies(constraint, ptype, version) is expected


def test_npm_inequality_with_a_different_version() -> None:
    assert satisfies("!=1.0.0", PackageType.NPM, "1.0.0") is False
    assert satisfies("!=1.0.0", PackageType.NPM, "1.0.1") is True


def test_parsed_structure_and_text() -> None:
    constraint = parse_constraint("<1.0 || >=2.0, <2.4")
    assert constraint.alternatives == (
        (Comparison(Op.LT, "1.0"),),
        (Comparison(Op.GE, "2.0"), Comparison(Op.LT, "2.4")),
    )
    assert str(constraint) == "<1.0 || >=2.0, <2.4"
    assert str(parse_constraint("=1")) == "==1"


BAD = [
    ("", "empty"),
    ("   ", "empty"),
    (">=1.0,", "empty comparison"),
    (">=1.0 || ", "empty comparison"),
    (">>1.0", "cannot parse '>>1.0'"),
    ("~=1.4", "cannot parse '~=1.4'"),
    ("^1.2", "cannot parse '\\^1.2'"),
    ("1.0 2.0", "cannot parse '1.0 2.0'"),
    ("<", "cannot parse '<'"),
    ("*", "cannot parse"),
    ("x" * 2000, "at most 1024"),
]


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_bad_constraints_name_the_constraint(text: str, problem: str) -> None:
    with pytest.raises(ConstraintError, match=problem) as info:
        parse_constraint(text)
    assert isinstance(info.value, ValueError)  # the API edge turns it into a 422
    assert isinstance(info.value, TidegateError)
    assert repr(text[:40]) in str(info.value)


def test_versions_checked_against_the_ecosystem_when_given() -> None:
    assert parse_constraint(">=1.0, <2", VersionKind.PYPI).alternatives[0][1].version == "2"
    with pytest.raises(ConstraintError, match=r"'>=1\.0, <not\.a\.version'.*pypi"):
        parse_constraint(">=1.0, <not.a.version", VersionKind.PYPI)


def test_a_bad_package_version_is_a_version_error() -> None:
    with pytest.raises(VersionError):
        satisfies("<2.0", PackageType.PYPI, "not a version!")


@pytest.mark.parametrize("ptype", list(PackageType))
def test_every_package_type_has_a_version_kind(ptype: PackageType) -> None:
    assert version_kind(ptype).value == ptype.value
