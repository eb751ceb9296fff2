"""A match pauses the cyclic garbage collector and hands the objects it kept to the oldest
generation without a scan (core/matching/matcher.py `_gc_paused`): afterwards the collector is
in the state the caller left it, and objects someone else froze stay frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence

import pytest

from tidegate.core.advisory import Advisory, AffectedPackage, Rating
from tidegate.core.matching.matcher import match_packages
from tidegate.core.models import Package, PackageType


class _Empty:
    """An advisory source without a record."""

    def advisories_for(
        self, ecosystem: str, name: str
    ) -> Sequence[tuple[Advisory, AffectedPackage]]:
        return ()

    def group_id(self, vuln_id: str) -> str | None:
        return None

    def aliases_of(self, vuln_id: str) -> set[str]:
        return set()

    def rating_for_group(self, vuln_id: str) -> Rating | None:
        return None


PACKAGES = [Package(f"p{i}", "1.0", PackageType.PYPI, "test") for i in range(50)]


@pytest.fixture
def gc_state() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_left_as_it_was(gc_state: None, enabled: bool) -> None:
    gc.enable() if enabled else gc.disable()
    assert not match_packages(PACKAGES, None, _Empty()).findings
    assert gc.isenabled() is enabled
    assert gc.get_freeze_count() == 0


def test_young_objects_need_no_scan_after_a_match(gc_state: None) -> None:
    gc.enable()
    many = [Package(f"p{i}", "1.0", PackageType.PYPI, "test") for i in range(2000)]
    kept = match_packages(many, None, _Empty())  # thousands of objects allocated meanwhile
    # The young generation was handed on, not left for the next allocation to scan.
    assert gc.get_count()[0] < 100
    assert not kept.findings


def test_objects_frozen_by_someone_else_stay_frozen(gc_state: None) -> None:
    gc.enable()
    gc.freeze()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    match_packages(PACKAGES, None, _Empty())
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()
