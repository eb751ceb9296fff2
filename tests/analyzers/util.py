"""Test helpers shared by analyzer tests: feed a file through an analyzer as the scan does."""

from __future__ import annotations

from tidegate.analyzers.interface import Analyzer
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import FileFindings

LAYER = "sha256:" + "ab" * 32
"""A diff_id to pass as the layer of test files."""


def file_entry(path: str, data: bytes, mode: int = 0o644) -> Entry:
    """A regular-file `Entry` for `path` holding `data`."""
    return Entry(path=path, kind=EntryKind.FILE, mode=mode, size=len(data))


def run_analyzer(
    analyzer: Analyzer,
    path: str,
    data: bytes,
    *,
    layer: str | None = LAYER,
    chunk_size: int = 4096,
    check_wants: bool = True,
) -> FileFindings:
    """Streams `data` as the file `path` through `analyzer` (begin / feed / finish).

    The content is fed in `chunk_size` pieces so that analyzers are exercised on split input.
    With `check_wants`, the analyzer must want the path (catches a wrong `wants`).
    """
    entry = file_entry(path, data)
    if check_wants:
        assert analyzer.wants(entry), f"{analyzer.name} does not want {path}"
    consumer = analyzer.begin(entry, layer)
    for start in range(0, len(data), chunk_size):
        consumer.feed(data[start : start + chunk_size])
    return consumer.finish()
