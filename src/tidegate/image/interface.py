"""The contract of image sources: what every transport (oci, archives, dir, registry) provides.

A source resolves an image to its manifest/config (`ResolvedImage`) and then streams each layer as
`LayerItem`s, one entry at a time, verifying the blob digest as it goes. Nothing of the image is
written to disk. Hostile entries (paths escaping the root, hard links to missing targets...) are
yielded as `Unknown`s and the stream goes on; fatal problems raise `ImageError` subclasses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from tidegate.core.files import Entry
from tidegate.core.models import ImageInfo, LayerInfo, Unknown


class EntryStream(Protocol):
    """The content of a FILE entry; valid only until the layer iterator moves on."""

    def read(self, size: int = -1, /) -> bytes: ...


LayerItem = tuple[Entry, EntryStream | None] | Unknown
"""What a layer yields: an entry (with its content stream for FILE entries) or an unknown."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety limits applied while reading hostile input."""

    max_layer_bytes: int = 64 * 1024**3
    """Uncompressed bytes one layer may expand to."""
    max_ratio: int = 1000
    """Uncompressed/compressed ratio beyond which (after `ratio_grace_bytes`) a layer is a bomb."""
    ratio_grace_bytes: int = 256 * 1024**2
    max_manifest_bytes: int = 4 * 1024**2
    """Manifests, indexes and configs larger than this are refused."""
    max_entries: int = 5_000_000
    """Entries one layer may hold."""


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """An image resolved to one platform: its identity, config and layers (bottom first)."""

    info: ImageInfo
    config: dict[str, Any]
    """The parsed OCI/Docker image config JSON (empty for a `dir:` root filesystem)."""
    layers: tuple[LayerInfo, ...] = field(default=())
    annotations: dict[str, str] = field(default_factory=dict)
    """The manifest's annotations (e.g. org.opencontainers.image.base.name)."""


class ImageSource(Protocol):
    """One image, in one of the supported transports."""

    def resolve(self) -> ResolvedImage:
        """Read the manifest (choosing the platform of an index) and the config."""
        ...

    def open_layer(self, layer: LayerInfo) -> AbstractContextManager[Iterator[LayerItem]]:
        """Stream the entries of one layer of the resolved image, bottom layer first.

        The blob's digest is checked as it is read; a mismatch raises `DigestMismatchError`
        when the stream ends (so results from that layer must not be kept).
        """
        ...

    def close(self) -> None:
        """Release connections and open files."""
        ...
