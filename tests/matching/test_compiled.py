"""The compiled form of entries (core/matching/compiled.py) decides exactly as `ranges.evaluate`
does: checked on every entry of the real records imported into a DB, at every version the entry
names and at versions just around them, and on hand-written edge shapes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tidegate.core.advisory import AffectedPackage, Event, EventKind, Range, RangeType, Rating
from tidegate.core.errors import VersionError
from tidegate.core.matching.compiled import (
    Row,
    compile_entry,
    evaluate_compiled,
    rating_of,
    specific_of,
    usable_for,
)
from tidegate.core.matching.ranges import evaluate, kind_for_ecosystem
from tidegate.core.models import Severity
from tidegate.core.versions import VersionKind
from tidegate.vulndb import codec

ECO, SEMVER, GIT = RangeType.ECOSYSTEM, RangeType.SEMVER, RangeType.GIT


def _compiled(entry: AffectedPackage) -> Row:
    row: Row = json.loads(compile_entry("TEST-1", 0, entry))
    return row


def _probes(entry: AffectedPackage) -> set[str]:
    """Every version the entry names, and neighbours just below and above each."""
    named = {e.version for r in entry.ranges for e in r.events} | set(entry.versions)
    named -= {"0", "*"}
    out = set(named)
    for v in named:
        out |= {v + "~", v + "1", v + ".1", v + "-1", v + "+x", v + "-r9", v + ".post1"}
    return out | {"0.0.1", "1.0", "99999.0"}


def _same_decision(entry: AffectedPackage, kind: VersionKind, version: str) -> None:
    row = _compiled(entry)
    assert usable_for(row, kind)
    try:
        expected = evaluate(version, entry, kind).match
    except VersionError:
        with pytest.raises(VersionError):
            evaluate_compiled(version, row, kind)
        return
    assert evaluate_compiled(version, row, kind) == expected, (entry, version)


def test_every_real_entry_decides_as_the_decoded_entry(real_db: Path) -> None:
    conn = sqlite3.connect(f"file:{real_db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT entry, compiled FROM affected").fetchall()
    finally:
        conn.close()
    checked = 0
    for entry_text, compiled_text in rows:
        entry = codec.decode_affected(entry_text)
        kind = kind_for_ecosystem(entry.ecosystem)
        row: Row = json.loads(compiled_text)
        if kind is None:
            assert row[3] is None
            continue
        for version in sorted(_probes(entry)):
            _same_decision(entry, kind, version)
            checked += 1
    assert checked > 10_000


def _entry(
    ecosystem: str, *ranges: Range, versions: tuple[str, ...] = (), **kw: object
) -> AffectedPackage:
    return AffectedPackage(ecosystem, "pkg", None, ranges, versions, **kw)  # type: ignore[arg-type]


def _range(kind: RangeType, *events: tuple[str, str]) -> Range:
    return Range(kind, tuple(Event(EventKind(k), v) for k, v in events))


EDGE_SHAPES = [
    # events out of order, two intervals
    _entry(
        "npm",
        _range(
            SEMVER,
            ("introduced", "2.0.0"),
            ("fixed", "2.0.4"),
            ("introduced", "1.0.0"),
            ("fixed", "1.0.2"),
        ),
    ),
    # limit bounds, and "*" lifts it
    _entry("Go", _range(SEMVER, ("introduced", "0"), ("limit", "1.5.0"))),
    _entry("Go", _range(SEMVER, ("introduced", "1.0.0"), ("limit", "*"))),
    # last_affected, no introduced, introduced after fixed
    _entry("PyPI", _range(ECO, ("introduced", "1.0"), ("last_affected", "1.4.2"))),
    _entry("PyPI", _range(ECO, ("fixed", "1.5"))),
    _entry("PyPI", _range(ECO, ("introduced", "0"), ("fixed", "1.0"), ("introduced", "1.5"))),
    # a bad range is skipped, the good one still matches; a GIT range never matches
    _entry(
        "PyPI",
        _range(ECO, ("introduced", "not a version!")),
        _range(ECO, ("introduced", "0"), ("fixed", "2.0")),
    ),
    _entry(
        "PyPI",
        _range(GIT, ("introduced", "0"), ("fixed", "abc123")),
        _range(ECO, ("introduced", "1.0")),
    ),
    # a SEMVER range on a Debian entry: evaluated as SemVer, skipped for non-SemVer versions
    _entry("Debian:12", _range(SEMVER, ("introduced", "1.0.0"), ("fixed", "1.2.0"))),
    # ... except where the walk never compares the version (an open range matches it), and
    # only up to the first comparison it would make
    _entry("Debian:12", _range(SEMVER, ("introduced", "0"))),
    _entry("Debian:12", _range(SEMVER, ("introduced", "0"), ("fixed", "1.2.0"))),
    _entry("Debian:12", _range(SEMVER, ("fixed", "1.2.0"))),
    _entry("Debian:12", _range(SEMVER, ("introduced", "0"), ("limit", "2.0.0"))),
    _entry("Debian:12", _range(SEMVER, ("introduced", "0"), ("limit", "*"))),
    # dpkg's tilde, trailing zeros and missing revisions around the bounds
    _entry("Debian:12", _range(ECO, ("introduced", "1.0~rc1"), ("fixed", "1.0-0"))),
    _entry("Debian:12", _range(ECO, ("introduced", "1:0.9"), ("last_affected", "1:1.0.0~"))),
    # listed versions, alone and after ranges that do not match
    _entry("PyPI", versions=("1.2.3", "1.2.5", "bad version")),
    _entry("PyPI", _range(ECO, ("introduced", "3.0")), versions=("1.2.3",)),
    _entry("Debian:12", _range(ECO, ("introduced", "0"), ("fixed", "3.0.11-1~deb12u2"))),
    _entry("Alpine:v3.18", _range(ECO, ("introduced", "0"), ("fixed", "3.1.4-r1"))),
    _entry("Rocky Linux:9", _range(ECO, ("introduced", "0"), ("fixed", "1:2.3-4.el9"))),
    _entry(
        "Maven",
        _range(
            ECO,
            ("introduced", "2.0-beta9"),
            ("fixed", "2.3.1"),
            ("introduced", "2.13.0"),
            ("fixed", "2.15.0"),
        ),
    ),
    _entry("Debian:12", _range(ECO, ("introduced", "0"))),
    _entry("PyPI"),
]


@pytest.mark.parametrize("entry", EDGE_SHAPES)
def test_edge_shapes_decide_as_the_decoded_entry(entry: AffectedPackage) -> None:
    kind = kind_for_ecosystem(entry.ecosystem)
    assert kind is not None
    extra = {"1.0.0", "1.0.1", "2.0.3", "1.4", "2.0", "2.14.1", "1.0", "1.0~", "1:1.0", "2.5-1"}
    for version in sorted(_probes(entry) | extra):
        _same_decision(entry, kind, version)


def test_a_form_answers_only_for_its_own_kind() -> None:
    row = _compiled(EDGE_SHAPES[-6])  # Debian
    assert usable_for(row, VersionKind.DEB)
    assert not usable_for(row, VersionKind.SEMVER)
    unknown = _compiled(_entry("Hackage", _range(ECO, ("introduced", "0"))))
    assert not usable_for(unknown, VersionKind.DEB)


def test_a_bad_installed_version_raises() -> None:
    row = _compiled(EDGE_SHAPES[-6])
    with pytest.raises(VersionError, match="deb"):
        evaluate_compiled("", row, VersionKind.DEB)


@pytest.mark.parametrize(
    ("entry", "flag"),
    [
        (_entry("Alpine:v3.18", _range(ECO, ("introduced", "0"))), True),
        (_entry("Alpine:v3.18", _range(ECO, ("introduced", "0"), ("fixed", "1.0-r0"))), False),
        (_entry("Alpine:v3.18", _range(ECO, ("introduced", "0")), versions=("1.0-r0",)), False),
        (_entry("Alpine:v3.18"), False),
    ],
)
def test_alpine_not_affected_flag(entry: AffectedPackage, flag: bool) -> None:
    assert _compiled(entry)[6] is flag


def test_what_a_finding_needs_survives_compilation() -> None:
    rating = Rating(Severity.HIGH, 7.5, "CVSS:3.1/AV:N", "CVSS_V3")
    entry = _entry(
        "Debian:12",
        _range(ECO, ("introduced", "0")),
        ecosystem_specific=(("tracker_kind", "no-dsa"), ("urgency", "low")),
        rating=rating,
    )
    row = _compiled(entry)
    assert row[:3] == ["TEST-1", 0, "Debian:12"]
    assert rating_of(row) == rating
    assert specific_of(row) == entry.ecosystem_specific
    assert rating_of(_compiled(_entry("PyPI"))) is None
