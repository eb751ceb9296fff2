"""Add vulnerability findings to a scan result from a local vulnerability DB snapshot."""

from __future__ import annotations

from dataclasses import replace

from tidegate.core.matching.matcher import AdvisorySource, match_packages
from tidegate.core.models import ScanResult


def match_result(result: ScanResult, source: AdvisorySource, snapshot_id: str) -> ScanResult:
    """`result` with the findings of its packages and the snapshot they came from."""
    catalogue = result.catalogue
    outcome = match_packages(catalogue.packages, catalogue.os, source)
    if outcome.unknowns:
        catalogue = replace(catalogue, unknowns=(*catalogue.unknowns, *outcome.unknowns))
    return replace(
        result, catalogue=catalogue, findings=tuple(outcome.findings), db_snapshot=snapshot_id
    )
