"""The layer cache: layer analyses keyed by verified blob digest and the analyzers' versions.

A second scan of the same image, or of another image sharing its base layers, reads these instead
of the layers. A changed analyzer (new `version`) changes the key, so stale results are never used.
Entries are zstd-compressed JSON written atomically; an unreadable entry is treated as a miss.
Nothing is cached unless a cache directory is given.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import zstandard
from pydantic import TypeAdapter, ValidationError

from tidegate.analyzers.interface import Analyzer
from tidegate.core.errors import CacheError
from tidegate.scan.layers import LayerAnalysis

CACHE_FORMAT = 1
"""Bump when LayerAnalysis or FileFindings change shape."""

_ADAPTER: TypeAdapter[LayerAnalysis] = TypeAdapter(LayerAnalysis)


def cache_key(digest: str, analyzers: Sequence[Analyzer]) -> str:
    """The key of a layer's analysis: its blob digest plus every analyzer's name and version."""
    versions = ",".join(sorted(f"{a.name}:{a.version}" for a in analyzers))
    text = f"tidegate-layer/{CACHE_FORMAT}|{digest}|{versions}"
    return hashlib.sha256(text.encode()).hexdigest()


class LayerCache:
    """A directory of cached layer analyses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the layer cache directory {root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json.zst"

    def get(self, key: str) -> LayerAnalysis | None:
        """The cached analysis, or None (missing, unreadable or of an old shape)."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            return None
        try:
            raw = zstandard.ZstdDecompressor().decompress(data)
            return _ADAPTER.validate_json(raw)
        except (zstandard.ZstdError, ValidationError, ValueError):
            return None

    def put(self, key: str, analysis: LayerAnalysis) -> None:
        """Store an analysis atomically (a reader never sees half an entry)."""
        path = self._path(key)
        data = zstandard.ZstdCompressor(level=3).compress(_ADAPTER.dump_json(analysis))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise CacheError(f"cannot write the layer cache entry {path}: {exc}") from exc
