"""The layer cache: round trip, keys that change with analyzers, damaged entries are misses."""

from __future__ import annotations

from pathlib import Path

from tidegate.core.models import (
    Executable,
    FileFindings,
    Location,
    OSInfo,
    Package,
    PackageType,
    Unknown,
)
from tidegate.scan.cache import LayerCache, cache_key
from tidegate.scan.layers import LayerAnalysis


class _A:
    def __init__(self, name: str, version: int) -> None:
        self.name = name
        self.version = version


ANALYSIS = LayerAnalysis(
    digest="sha256:" + "a" * 64,
    diff_id="sha256:" + "b" * 64,
    paths=("/etc", "/etc/os-release", "/bin/sh"),
    non_dirs=("/etc/os-release", "/bin/sh"),
    whiteouts=("/tmp/x",),
    opaques=("/var/cache",),
    findings=(
        FileFindings(analyzer="os-release", path="/etc/os-release", os=OSInfo("debian", "12")),
        FileFindings(
            analyzer="dpkg",
            path="/var/lib/dpkg/status",
            packages=(
                Package(
                    "libssl3",
                    "3.0.11-1~deb12u2",
                    PackageType.DEB,
                    "dpkg",
                    (Location("/var/lib/dpkg/status", "sha256:b"),),
                    source_name="openssl",
                ),
            ),
        ),
        FileFindings(
            analyzer="executables",
            path="/bin/sh",
            executable=Executable("/bin/sh", 0o4755, 10, "c" * 64),
        ),
    ),
    unknowns=(Unknown("/x", "why"),),
)


def test_round_trip(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    key = cache_key(ANALYSIS.digest, [_A("dpkg", 1)])
    assert cache.get(key) is None
    cache.put(key, ANALYSIS)
    assert cache.get(key) == ANALYSIS


def test_key_changes_with_an_analyzer_version() -> None:
    one = cache_key("sha256:x", [_A("dpkg", 1), _A("apk", 1)])
    assert one == cache_key("sha256:x", [_A("apk", 1), _A("dpkg", 1)])
    assert one != cache_key("sha256:x", [_A("dpkg", 2), _A("apk", 1)])
    assert one != cache_key("sha256:y", [_A("dpkg", 1), _A("apk", 1)])


def test_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    cache = LayerCache(tmp_path)
    key = cache_key("sha256:x", [])
    cache.put(key, ANALYSIS)
    (entry,) = tmp_path.rglob("*.json.zst")
    entry.write_bytes(entry.read_bytes()[:20])
    assert cache.get(key) is None
