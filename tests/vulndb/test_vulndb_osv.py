"""OSV records -> Advisory: fields, ratings, dates, and hostile input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tidegate.core.advisory import EventKind, RangeType
from tidegate.core.errors import FeedError
from tidegate.core.models import Severity
from tidegate.vulndb.osv import load_document, parse_record, parse_timestamp

V31_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V31_LOW = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:N/A:N"
V40_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
V2_HIGH = "AV:N/AC:L/Au:N/C:P/I:P/A:P"


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "TEST-1", "modified": "2024-01-01T00:00:00Z"}
    base.update(fields)
    return base


def entry(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "package": {"ecosystem": "Debian:12", "name": "openssl"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.1"}]}],
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("fields", "severity", "score", "source"),
    [
        pytest.param(
            {"severity": [{"type": "CVSS_V3", "score": V31_CRITICAL}]},
            Severity.CRITICAL,
            9.8,
            "CVSS_V3",
            id="cvss-v3",
        ),
        pytest.param(
            {"severity": [{"type": "CVSS_V2", "score": V2_HIGH}]},
            Severity.HIGH,
            7.5,
            "CVSS_V2",
            id="cvss-v2-nvd-bands",
        ),
        pytest.param(
            {
                "severity": [
                    {"type": "CVSS_V2", "score": V2_HIGH},
                    {"type": "CVSS_V3", "score": V31_LOW},
                    {"type": "CVSS_V4", "score": V40_CRITICAL},
                ]
            },
            Severity.CRITICAL,
            9.3,
            "CVSS_V4",
            id="v4-preferred-over-v3-and-v2",
        ),
        pytest.param(
            {
                "severity": [
                    {"type": "CVSS_V2", "score": V2_HIGH},
                    {"type": "CVSS_V3", "score": V31_LOW},
                ]
            },
            Severity.LOW,
            3.7,
            "CVSS_V3",
            id="v3-preferred-over-v2-even-if-lower",
        ),
        pytest.param(
            {
                "severity": [
                    {"type": "CVSS_V4", "score": "CVSS:4.0/garbage"},
                    {"type": "CVSS_V3", "score": V31_LOW},
                ]
            },
            Severity.LOW,
            3.7,
            "CVSS_V3",
            id="unparsable-vector-skipped",
        ),
        pytest.param(
            {"database_specific": {"severity": "MODERATE"}},
            Severity.MEDIUM,
            None,
            "database_specific.severity",
            id="ghsa-word",
        ),
        pytest.param(
            {"severity": [{"type": "Ubuntu", "score": "high"}]},
            Severity.HIGH,
            None,
            "Ubuntu priority",
            id="ubuntu-priority",
        ),
        pytest.param(
            {
                "severity": [{"type": "CVSS_V3", "score": V31_LOW}],
                "database_specific": {"severity": "CRITICAL"},
            },
            Severity.LOW,
            3.7,
            "CVSS_V3",
            id="cvss-beats-word",
        ),
    ],
)
def test_record_rating(
    fields: dict[str, Any], severity: Severity, score: float | None, source: str
) -> None:
    adv = parse_record(record(**fields), where="t.json")
    assert adv.rating is not None
    assert (adv.rating.severity, adv.rating.score, adv.rating.source) == (severity, score, source)


@pytest.mark.parametrize(
    ("urgency", "severity"),
    [
        ("unimportant", Severity.NEGLIGIBLE),
        ("low", Severity.LOW),
        ("low*", Severity.LOW),
        ("medium**", Severity.MEDIUM),
        ("high", Severity.HIGH),
        ("not yet assigned", Severity.UNKNOWN),
        ("end-of-life", Severity.UNKNOWN),
    ],
)
def test_debian_urgency_rates_entry_and_record(urgency: str, severity: Severity) -> None:
    raw = record(affected=[entry(ecosystem_specific={"urgency": urgency})])
    adv = parse_record(raw, where="t.json")
    assert adv.affected[0].rating is not None
    assert adv.affected[0].rating.severity is severity
    assert adv.affected[0].rating.source == "Debian urgency"
    assert adv.rating == adv.affected[0].rating
    assert adv.affected[0].specific("urgency") == urgency


def test_unrated_record_has_no_rating() -> None:
    assert parse_record(record(affected=[entry()]), where="t.json").rating is None


def test_per_entry_cvss_severity() -> None:
    raw = record(affected=[entry(severity=[{"type": "CVSS_V3", "score": V31_CRITICAL}])])
    adv = parse_record(raw, where="t.json")
    assert adv.affected[0].rating is not None
    assert adv.affected[0].rating.score == 9.8
    assert adv.rating == adv.affected[0].rating


def test_fields_are_kept() -> None:
    raw = record(
        id="GHSA-xxxx-yyyy-zzzz",
        aliases=["CVE-2024-1", "GHSA-xxxx-yyyy-zzzz"],
        upstream=["CVE-2024-2"],
        related=["CVE-2024-3"],
        summary="s",
        details="d",
        published="2023-12-31T23:00:00+01:00",
        references=[{"type": "WEB", "url": "https://a"}, {"type": "FIX", "url": "https://a"}],
        affected=[
            entry(
                package={"ecosystem": "PyPI", "name": "Foo", "purl": "pkg:pypi/foo"},
                versions=["1.0", "1.1"],
                ranges=[
                    {"type": "GIT", "repo": "https://g", "events": [{"introduced": "abc"}]},
                    {
                        "type": "ECOSYSTEM",
                        "events": [
                            {"introduced": "1.0"},
                            {"last_affected": "1.1"},
                            {"limit": "*"},
                            {"unknown_event": "x"},
                        ],
                    },
                    {"type": "SOME_FUTURE_TYPE", "events": []},
                ],
                ecosystem_specific={"affected_functions": ["f"], "flag": True, "n": 3},
            )
        ],
    )
    adv = parse_record(raw, where="t.json", source="test")
    assert adv.aliases == ("CVE-2024-1", "CVE-2024-2")
    assert adv.related == ("CVE-2024-3",)
    assert adv.published == datetime(2023, 12, 31, 22, 0, tzinfo=UTC)
    assert adv.references == ("https://a",)
    assert adv.source == "test"
    (pkg,) = adv.affected
    assert (pkg.ecosystem, pkg.name, pkg.purl, pkg.versions) == (
        "PyPI",
        "Foo",
        "pkg:pypi/foo",
        ("1.0", "1.1"),
    )
    assert [r.type for r in pkg.ranges] == [RangeType.GIT, RangeType.ECOSYSTEM]
    assert pkg.ranges[0].repo == "https://g"
    assert [(e.kind, e.version) for e in pkg.ranges[1].events] == [
        (EventKind.INTRODUCED, "1.0"),
        (EventKind.LAST_AFFECTED, "1.1"),
        (EventKind.LIMIT, "*"),
    ]
    assert pkg.ecosystem_specific == (("flag", "true"), ("n", "3"))


def test_entry_without_package_is_skipped() -> None:
    raw = record(affected=[{"ranges": [{"type": "GIT", "repo": "r", "events": []}]}, entry()])
    assert [a.name for a in parse_record(raw, where="t").affected] == ["openssl"]


@pytest.mark.parametrize(
    ("rid", "fields", "expected"),
    [
        pytest.param(
            "DSA-5000-1",
            {"published": "2023-02-01T00:00:00Z"},
            datetime(2023, 2, 1, tzinfo=UTC),
            id="dsa-published-is-fix-date",
        ),
        pytest.param(
            "GHSA-aaaa-bbbb-cccc",
            {
                "published": "2023-02-01T00:00:00Z",
                "database_specific": {"github_reviewed_at": "2023-02-02T00:00:00Z"},
            },
            None,
            id="ghsa-review-date-is-not-a-fix-date",
        ),
        pytest.param(
            "GHSA-aaaa-bbbb-cccc",
            {"database_specific": {"fix_published": "2023-03-01T00:00:00Z"}},
            datetime(2023, 3, 1, tzinfo=UTC),
            id="explicit-fix-published",
        ),
    ],
)
def test_fix_published(rid: str, fields: dict[str, Any], expected: datetime | None) -> None:
    adv = parse_record(record(id=rid, affected=[entry()], **fields), where="t")
    assert adv.fix_published == expected


def test_dsa_without_fix_has_no_fix_date() -> None:
    unfixed = entry(ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}])
    raw = record(id="DSA-5000-1", published="2023-02-01T00:00:00Z", affected=[unfixed])
    assert parse_record(raw, where="t").fix_published is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-07-08T04:32:24.548042624Z", datetime(2026, 7, 8, 4, 32, 24, 548042, tzinfo=UTC)),
        ("2024-01-02T03:04:05+0200", datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC)),
        ("2024-01-02T03:04:05", datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2024-01-02", datetime(2024, 1, 2, tzinfo=UTC)),
        ("2024-13-02T00:00:00Z", None),
        ("yesterday", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    assert parse_timestamp(text) == expected


def test_yaml_scalars_become_strings() -> None:
    text = b"id: PYSEC-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package: {name: a, ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n    - fixed: 1.10\n"  # noqa: E501
    (raw,) = load_document(text, where="t.yaml", yaml_format=True)
    adv = parse_record(raw, where="t.yaml")
    assert adv.modified == datetime(2024, 1, 1, tzinfo=UTC)
    # YAML reads `1.10` as the float 1.1: the version text as the author meant it is lost, but
    # it must not crash; quoting (as PyPA does) keeps it.
    assert [e.version for e in adv.affected[0].ranges[0].events] == ["0", "1.1"]


@pytest.mark.parametrize(
    ("data", "yaml_format", "count"),
    [
        (b'{"id": "A", "modified": "x"}', None, 1),
        (b'[{"id": "A"}, {"id": "B"}]', None, 2),
        (b'{"vulns": [{"id": "A"}, {"id": "B"}, {"id": "C"}]}', None, 3),
        (b"\xef\xbb\xbf" + b'{"id": "A"}', False, 1),
        (b"- id: A\n- id: B\n", None, 2),
    ],
)
def test_load_document_shapes(data: bytes, yaml_format: bool | None, count: int) -> None:
    assert len(load_document(data, where="doc", yaml_format=yaml_format)) == count


@pytest.mark.parametrize(
    ("data", "yaml_format", "message"),
    [
        (b'{"id": ', False, "doc: malformed JSON"),
        (b"id: [unclosed\n", True, "doc: malformed YAML"),
        (b"\xff\xfe\x00", False, "doc: not UTF-8"),
        (b'"just a string"', False, "doc: expected an OSV record"),
        (b"[" * 100_000 + b"]" * 100_000, False, "doc:"),
    ],
)
def test_load_document_errors(data: bytes, yaml_format: bool, message: str) -> None:
    with pytest.raises(FeedError, match="^" + message.replace("(", r"\(")):
        load_document(data, where="doc", yaml_format=yaml_format)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"modified": "2024-01-01T00:00:00Z"}, "field 'id' is missing"),
        ({"id": "", "modified": "2024-01-01T00:00:00Z"}, "field 'id' is empty"),
        ({"id": 7, "modified": "2024-01-01T00:00:00Z"}, "field 'id' must be a string, got int"),
        ({"id": "X-1"}, "record 'X-1': field 'modified' is missing"),
        ({"id": "X-1", "modified": 5}, "field 'modified' must be an RFC 3339 timestamp"),
        ({"id": "X-1", "modified": "soon"}, "field 'modified' is not an RFC 3339 timestamp"),
        (record(aliases="CVE-1"), "field 'aliases' must be a list, got a string"),
        (record(aliases=[1]), r"field 'aliases\[0\]' must be a string"),
        (record(affected={"a": 1}), "field 'affected' must be a list, got an object"),
        (record(affected=["x"]), r"field 'affected\[0\]' must be an object"),
        (
            record(affected=[{"package": {"ecosystem": "PyPI"}}]),
            r"field 'affected\[0\].package.name' is missing",
        ),
        (
            record(affected=[entry(ranges=[{"type": "ECOSYSTEM", "events": "x"}])]),
            r"field 'affected\[0\].ranges\[0\].events' must be a list",
        ),
        (
            record(affected=[entry(ranges=[{"type": "ECOSYSTEM", "events": [{"fixed": None}]}])]),
            r"field 'affected\[0\].ranges\[0\].events\[0\].fixed' must be a string, got null",
        ),
        (record(summary="x" * 100_000), "field 'summary' is 100000 characters long"),
        (record(id="X" * 300), "field 'id' is 300 characters long"),
        (record(details=["a"]), "field 'details' must be a string, got a list"),
        (record(severity=[{"type": "CVSS_V3"}]), r"field 'severity\[0\]' needs string"),
        (record(database_specific=[]), "field 'database_specific' must be an object"),
        ("not a record", "expected an OSV record"),
    ],
)
def test_bad_records(raw: object, message: str) -> None:
    with pytest.raises(FeedError, match=message) as info:
        parse_record(raw, where="feed/x.json")
    assert str(info.value).startswith("feed/x.json")


def test_error_names_the_record() -> None:
    with pytest.raises(FeedError, match=r"^f.json: record 'TEST-1': field 'affected\[0\]'"):
        parse_record(record(affected=[3]), where="f.json")


def test_huge_list_refused() -> None:
    raw = record(affected=[entry(versions=["1"] * 200_001)])
    with pytest.raises(FeedError, match=r"affected\[0\].versions' has 200001 items"):
        parse_record(raw, where="t")


def test_yaml_alias_bomb_is_harmless() -> None:
    laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        laughs.append(f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
    text = "\n".join(["id: BOMB-1", "modified: 2024-01-01T00:00:00Z", *laughs, "aliases: *i"])
    (raw,) = load_document(text.encode(), where="bomb.yaml", yaml_format=True)
    with pytest.raises(FeedError, match=r"field 'aliases\[0\]' must be a string, got a list"):
        parse_record(raw, where="bomb.yaml")


def test_unknown_fields_are_ignored() -> None:
    raw = record(
        schema_version="9.9.9",
        brand_new={"nested": [1, 2]},
        affected=[entry(brand_new_too=[None], database_specific={"x": {"y": 1}})],
    )
    assert parse_record(json.loads(json.dumps(raw)), where="t").affected[0].name == "openssl"
