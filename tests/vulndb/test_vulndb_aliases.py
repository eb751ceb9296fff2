"""Alias groups: one vulnerability, one group; bundles and conflicting CVEs never merge."""

from __future__ import annotations

import pytest

from tidegate.vulndb.aliases import compute_groups

Records = list[tuple[str, list[str]]]


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        pytest.param(
            [
                ("PYSEC-2021-108", ["CVE-2021-33503", "GHSA-q2q7-5pp4-w6pg"]),
                ("GHSA-q2q7-5pp4-w6pg", ["CVE-2021-33503"]),
                ("DEBIAN-CVE-2021-33503", ["CVE-2021-33503"]),
            ],
            {
                "PYSEC-2021-108": "CVE-2021-33503",
                "GHSA-q2q7-5pp4-w6pg": "CVE-2021-33503",
                "DEBIAN-CVE-2021-33503": "CVE-2021-33503",
                "CVE-2021-33503": "CVE-2021-33503",
            },
            id="cve-ghsa-pysec-debian",
        ),
        pytest.param(
            [("GHSA-bbbb", ["PYSEC-1"]), ("PYSEC-1", ["GHSA-aaaa"])],
            {"GHSA-aaaa": "GHSA-aaaa", "GHSA-bbbb": "GHSA-aaaa", "PYSEC-1": "GHSA-aaaa"},
            id="no-cve-prefers-ghsa",
        ),
        pytest.param(
            [("DSA-1-1", ["CVE-1", "CVE-2"]), ("DEBIAN-CVE-1", ["CVE-1"])],
            {"DSA-1-1": "DSA-1-1", "CVE-1": "CVE-1", "CVE-2": "CVE-2", "DEBIAN-CVE-1": "CVE-1"},
            id="bundle-advisory-joins-no-cve-group",
        ),
        pytest.param(
            [("PYSEC-1", ["CVE-1", "GHSA-x"]), ("PYSEC-2", ["CVE-2", "GHSA-x"])],
            {
                "PYSEC-1": "CVE-1",
                "GHSA-x": "CVE-1",
                "CVE-1": "CVE-1",
                "PYSEC-2": "CVE-2",
                "CVE-2": "CVE-2",
            },
            id="two-cves-never-merge",
        ),
        pytest.param([("GO-1", [])], {"GO-1": "GO-1"}, id="alone"),
    ],
)
def test_groups(records: Records, expected: dict[str, str]) -> None:
    assert compute_groups(records) == expected


def test_order_independent() -> None:
    records: Records = [
        ("PYSEC-1", ["CVE-1", "GHSA-x"]),
        ("PYSEC-2", ["CVE-2", "GHSA-x"]),
        ("GHSA-x", []),
    ]
    assert compute_groups(records) == compute_groups(list(reversed(records)))
