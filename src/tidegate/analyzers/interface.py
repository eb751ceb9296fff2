"""The contract of analyzers: each reads one kind of file and says what it found there.

An analyzer is asked about every entry of every layer (`wants`, a cheap path/mode test); for those
it wants, the scan streams the file's content once through a `FileConsumer` (several analyzers can
read the same file in one pass), then calls `finish()` for a `FileFindings`. Analyzers never see
other layers and keep no state between files: squashing layers and resolving across files (the
user in /etc/passwd, the OS of a package) is the scan's job. Each analyzer has a `version` that
goes into the layer cache key: bump it whenever its output for the same input changes.
"""

from __future__ import annotations

from typing import Protocol

from tidegate.core.files import Entry
from tidegate.core.models import FileFindings, Unknown


class AnalyzerError(Exception):
    """Raised inside an analyzer for a file it cannot parse; the scan turns it into an Unknown."""


class FileConsumer(Protocol):
    """Receives one file's content in chunks, in order."""

    def feed(self, chunk: bytes) -> None: ...

    def finish(self) -> FileFindings:
        """Called once after the last chunk; may raise `AnalyzerError`."""
        ...


class Analyzer(Protocol):
    """One kind of file, one analyzer."""

    name: str
    version: int

    def wants(self, entry: Entry) -> bool:
        """True when this analyzer should read `entry` (called for FILE entries only)."""
        ...

    def begin(self, entry: Entry, layer: str | None) -> FileConsumer:
        """Start reading `entry`, found in the layer with diff_id `layer`."""
        ...


class BufferedAnalyzer:
    """Base for analyzers that need a whole file: buffers up to `max_size` bytes, then `parse`s.

    A file larger than `max_size` is not buffered; it becomes an Unknown ("too large").
    """

    name: str = "buffered"
    version: int = 1
    max_size: int = 8 * 1024 * 1024

    def wants(self, entry: Entry) -> bool:
        raise NotImplementedError

    def parse(self, entry: Entry, data: bytes, layer: str | None) -> FileFindings:
        """Parse a whole file; raise `AnalyzerError` for a malformed one."""
        raise NotImplementedError

    def begin(self, entry: Entry, layer: str | None) -> FileConsumer:
        return _Buffer(self, entry, layer)


class _Buffer:
    __slots__ = ("_analyzer", "_chunks", "_entry", "_layer", "_size", "_too_large")

    def __init__(self, analyzer: BufferedAnalyzer, entry: Entry, layer: str | None) -> None:
        self._analyzer = analyzer
        self._entry = entry
        self._layer = layer
        self._chunks: list[bytes] = []
        self._size = 0
        self._too_large = entry.size > analyzer.max_size

    def feed(self, chunk: bytes) -> None:
        if self._too_large:
            return
        self._size += len(chunk)
        if self._size > self._analyzer.max_size:
            self._too_large = True
            self._chunks.clear()
            return
        self._chunks.append(chunk)

    def finish(self) -> FileFindings:
        a = self._analyzer
        if self._too_large:
            reason = f"file larger than the {a.name} analyzer's limit of {a.max_size} bytes"
            return FileFindings(
                analyzer=a.name,
                path=self._entry.path,
                unknowns=(Unknown(self._entry.path, reason, a.name, self._layer),),
            )
        return a.parse(self._entry, b"".join(self._chunks), self._layer)
