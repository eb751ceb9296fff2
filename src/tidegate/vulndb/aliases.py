"""Alias groups: which advisory ids name one vulnerability (CVE <-> GHSA <-> PYSEC <-> DSA ...).

Owns the grouping rule, a union-find over every record's id and its `aliases`/`upstream`, run once
per database build. Two guards keep one vulnerability from swallowing others:

- a record whose ids hold more than one CVE is a bundle (a DSA, DLA or USN fixing several
  vulnerabilities at once): it joins no CVE group; only its non-CVE aliases join it;
- two groups that each hold a different CVE are never merged, whatever links them.

Records are visited in id order so the result does not depend on the order of import. A group's
id, the one a finding displays, is its CVE when it has one, else its GHSA id, else its smallest id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def is_cve(vuln_id: str) -> bool:
    return vuln_id.startswith("CVE-")


def compute_groups(records: Iterable[tuple[str, Sequence[str]]]) -> dict[str, str]:
    """Map every id seen (record ids and their aliases) to its group id."""
    parent: dict[str, str] = {}
    cve_of: dict[str, str | None] = {}

    def find(x: str) -> str:
        if x not in parent:
            parent[x] = x
            cve_of[x] = x if is_cve(x) else None
            return x
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression keeps later finds short
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra == rb:
            return
        ca, cb = cve_of[ra], cve_of[rb]
        if ca is not None and cb is not None and ca != cb:
            return
        parent[rb] = ra
        cve_of[ra] = ca or cb

    for rid, aliases in sorted(records, key=lambda r: r[0]):
        ids = [rid, *aliases]
        cves = {i for i in ids if is_cve(i)}
        linked = [i for i in ids if not is_cve(i)] if len(cves) > 1 else ids
        find(rid)
        for other in linked:
            union(rid, other)
        for other in ids:
            find(other)

    members: dict[str, list[str]] = {}
    for x in parent:
        members.setdefault(find(x), []).append(x)
    groups: dict[str, str] = {}
    for root, ids in members.items():
        display = cve_of[root] or _display_id(ids)
        for x in ids:
            groups[x] = display
    return groups


def _display_id(ids: Sequence[str]) -> str:
    ghsa = sorted(i for i in ids if i.startswith("GHSA-"))
    return ghsa[0] if ghsa else min(ids)
