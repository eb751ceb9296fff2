"""The executable inventory: every regular file with an execute, setuid or setgid bit, hashed.

Drift prevention later compares what a container executes against this list (path, sha256), so
the hash must be of exactly the bytes the layer holds. The content is hashed as it streams past,
never buffered: this analyzer reads every binary of the image.
"""

from __future__ import annotations

import hashlib
import stat

from tidegate.analyzers.interface import FileConsumer
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import Executable, FileFindings, Unknown

_WANTED_BITS = 0o111 | stat.S_ISUID | stat.S_ISGID


class ExecutablesAnalyzer:
    """Hashes regular files with any execute bit, or the setuid/setgid bit."""

    name = "executables"
    version = 1

    def wants(self, entry: Entry) -> bool:
        return entry.kind is EntryKind.FILE and bool(entry.mode & _WANTED_BITS)

    def begin(self, entry: Entry, layer: str | None) -> FileConsumer:
        return _Hasher(self.name, entry, layer)


class _Hasher:
    __slots__ = ("_analyzer", "_entry", "_hash", "_layer", "_size")

    def __init__(self, analyzer: str, entry: Entry, layer: str | None) -> None:
        self._analyzer = analyzer
        self._entry = entry
        self._layer = layer
        self._hash = hashlib.sha256()
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._size += len(chunk)

    def finish(self) -> FileFindings:
        entry = self._entry
        if self._size != entry.size:
            # A hash of a short read would be a wrong inventory entry: drift checks would then
            # flag (or, worse, allow) the wrong file. Record why instead.
            reason = f"read {self._size} bytes of an executable whose header says {entry.size}"
            return FileFindings(
                analyzer=self._analyzer,
                path=entry.path,
                unknowns=(Unknown(entry.path, reason, self._analyzer, self._layer),),
            )
        executable = Executable(
            path=entry.path,
            mode=entry.mode,
            size=self._size,
            sha256=self._hash.hexdigest(),
            uid=entry.uid,
            gid=entry.gid,
            layer=self._layer,
        )
        return FileFindings(analyzer=self._analyzer, path=entry.path, executable=executable)
