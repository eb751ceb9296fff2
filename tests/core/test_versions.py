"""Version comparators: known-answer vectors (our own fixtures and ../shared/vulndata), order laws,
errors on bad input, and the public API."""

from __future__ import annotations

import random
from functools import cmp_to_key
from itertools import combinations
from pathlib import Path

import pytest

import tidegate.versions
from tidegate.core.errors import VersionError
from tidegate.core.versions import VersionKind, apk, comparator, compare

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "versions"
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "vulndata" / "versions"

# Shared vector files and the kind they test.
SHARED_FILES = {
    "dpkg.tsv": VersionKind.DEB,
    "dpkg-osv-generated.tsv": VersionKind.DEB,
    "apk.tsv": VersionKind.APK,
    "apk-osv-generated.tsv": VersionKind.APK,
    "rpm.tsv": VersionKind.RPM,
    "pep440.tsv": VersionKind.PYPI,
}


def _rows(path: Path) -> list[tuple[int, str, str, int]]:
    """(line number, a, b, expected) of a vectors file with the header a, b, expected, source."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t")[:3] == ["a", "b", "expected"], path
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        a, b, expected = line.split("\t")[:3]
        rows.append((number, a, b, int(expected)))
    return rows


def _failures(kind: VersionKind, path: Path) -> list[str]:
    failures = []
    for number, a, b, expected in _rows(path):
        try:
            got: int | str = compare(kind, a, b)
        except VersionError as exc:
            got = f"VersionError({exc})"
        if got != expected:
            failures.append(f"{path.name}:{number}: compare({a!r}, {b!r}) = {got}, want {expected}")
    return failures


def _fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.tsv"))


def test_every_kind_has_a_fixture_file() -> None:
    assert {p.stem for p in _fixture_files()} == {k.value for k in VersionKind}


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: p.stem)
def test_fixture_vectors(path: Path) -> None:
    rows = _rows(path)
    assert len(rows) >= 25, "each fixture file holds a real table"
    failures = _failures(VersionKind(path.stem), path)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("name", "kind"), sorted(SHARED_FILES.items()))
def test_shared_vectors(name: str, kind: VersionKind) -> None:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared vectors absent: {path}")
    failures = _failures(kind, path)
    assert not failures, f"{len(failures)} failing rows:\n" + "\n".join(failures[:50])


def _sample_versions(kind: VersionKind) -> list[str]:
    versions: set[str] = set()
    for _, a, b, _ in _rows(FIXTURES / f"{kind.value}.tsv"):
        versions.update((a, b))
    shared = [n for n, k in SHARED_FILES.items() if k == kind and (SHARED / n).is_file()]
    picker = random.Random(20240601)  # fixed seed: the sample is the same on every run
    for name in shared:
        rows = _rows(SHARED / name)
        for _, a, b, _ in picker.sample(rows, min(40, len(rows))):
            versions.update((a, b))
    return sorted(versions)


@pytest.mark.parametrize("kind", list(VersionKind), ids=str)
def test_order_laws(kind: VersionKind) -> None:
    """Reflexive, antisymmetric, and transitive: a sort by the comparator is a consistent chain."""
    versions = [v for v in _sample_versions(kind) if _valid(kind, v)]
    if kind == VersionKind.MAVEN:
        # Maven itself is not transitive around MNG-6964's "1-0.alpha": 1 < 1-a < 1-0.alpha < 1.
        # We follow Maven there (see the vectors); the laws hold for everything else.
        versions = [v for v in versions if "-0." not in v]
    for v in versions:
        assert compare(kind, v, v) == 0, v
    for a, b in combinations(versions, 2):
        assert compare(kind, a, b) == -compare(kind, b, a), (a, b)
    ordered = sorted(versions, key=cmp_to_key(lambda x, y: compare(kind, x, y)))
    for i, low in enumerate(ordered):
        for high in ordered[i + 1 :]:
            assert compare(kind, low, high) <= 0, (low, high)


def _valid(kind: VersionKind, version: str) -> bool:
    try:
        comparator(kind).parse(version)
    except VersionError:
        return False
    return True


@pytest.mark.parametrize(
    ("kind", "version"),
    [
        (VersionKind.DEB, ""),
        (VersionKind.DEB, "a:1.0"),
        (VersionKind.DEB, "1:"),
        (VersionKind.DEB, "1.0-"),
        (VersionKind.DEB, "1.0 -1"),
        (VersionKind.RPM, ""),
        (VersionKind.RPM, "x:1.0-1"),
        (VersionKind.RPM, "-1"),
        (VersionKind.APK, "1.0-1"),
        (VersionKind.APK, "1.0_foo"),
        (VersionKind.APK, "v1.0"),
        (VersionKind.PYPI, "not a version"),
        (VersionKind.PYPI, "1.0-foo-bar"),
        (VersionKind.SEMVER, "1.2.3.4"),
        (VersionKind.SEMVER, "1.0.0-alpha..1"),
        (VersionKind.NPM, "latest"),
        (VersionKind.GOLANG, "master"),
        (VersionKind.MAVEN, ""),
        (VersionKind.MAVEN, "1.0 beta"),
    ],
)
def test_invalid_versions_name_version_and_ecosystem(kind: VersionKind, version: str) -> None:
    with pytest.raises(VersionError) as caught:
        comparator(kind).parse(version)
    message = str(caught.value)
    assert repr(version) in message
    assert kind.value in message


def test_apk_orders_an_invalid_tail_like_apk() -> None:
    # apk compares the valid prefix; the invalid rest sorts after the end of a version. `parse`
    # (the validation used for records) still refuses such versions.
    with pytest.raises(VersionError):
        comparator(VersionKind.APK).parse("23_foo")
    assert compare(VersionKind.APK, "23_foo", "4_beta") == 1
    assert compare(VersionKind.APK, "1.0", "1.0bc") == -1


@pytest.mark.parametrize("kind", [k for k in VersionKind if k != VersionKind.APK], ids=str)
def test_compare_refuses_what_parse_refuses(kind: VersionKind) -> None:
    with pytest.raises(VersionError):
        compare(kind, "1.0 beta", "1.0")


def test_semver_family_kinds_name_themselves_in_errors() -> None:
    with pytest.raises(VersionError, match="npm"):
        compare("npm", "x.y.z", "1.0.0")
    with pytest.raises(VersionError, match="golang"):
        compare("golang", "x.y.z", "1.0.0")


def test_public_api() -> None:
    assert tidegate.versions.__all__ == [
        "Comparator",
        "VersionKind",
        "comparator",
        "compare",
        "parse",
    ]
    assert {k.value for k in tidegate.versions.VersionKind} >= {
        "deb",
        "apk",
        "rpm",
        "pypi",
        "npm",
        "golang",
        "maven",
    }
    assert tidegate.versions.compare("deb", "1.0~rc1-1", "1.0-1") == -1
    assert tidegate.versions.compare("maven", "2.15.0", "2.14.1") == 1
    with pytest.raises(ValueError, match="cargo"):
        tidegate.versions.compare("cargo", "1", "2")


def test_comparators_report_their_kind() -> None:
    for kind in VersionKind:
        assert comparator(kind).kind == kind


def test_apk_fast_path_agrees_with_the_full_scanner() -> None:
    """Well-formed apk versions are read by one regex; the result must equal apk's token scan."""
    paths = [FIXTURES / "apk.tsv"] + [
        SHARED / n
        for n, k in SHARED_FILES.items()
        if k == VersionKind.APK and (SHARED / n).is_file()
    ]
    versions = {v for path in paths for _, a, b, _ in _rows(path) for v in (a, b)}
    versions |= {"1.0bc", "23_foo", "1.0_patch1", "1.2.3~", "1.0-r", "1..2", "1.9.4p2-r1"}
    mismatched = [v for v in sorted(versions) if apk._scan(v) != apk.tokens(v)]
    assert not mismatched
