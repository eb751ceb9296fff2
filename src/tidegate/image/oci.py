"""`oci:DIR[:TAG]`: an OCI image layout directory (index.json, blobs/<algo>/<hex>).

The tag is the `org.opencontainers.image.ref.name` annotation of an index.json entry; entries
may be nested indexes, resolved by platform. Blob names come from hostile manifests, so a digest
is checked to be "algo:hex" before it becomes a path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tidegate.core.errors import ImageNotFoundError, ManifestError
from tidegate.core.models import ImageInfo, LayerInfo
from tidegate.image.interface import Limits
from tidegate.image.layer import BlobStream
from tidegate.image.manifest import (
    BlobStoreSource,
    Descriptor,
    Platform,
    parse_index,
    parse_json,
    select_by_tag,
    verify_digest,
)
from tidegate.image.reference import ImageReference

_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")


def blob_name(digest: str, what: str) -> str:
    """ "blobs/<algo>/<hex>" for a well-formed digest; ManifestError for anything else."""
    if not _DIGEST.fullmatch(digest):
        raise ManifestError(f"{what}: malformed or unsupported blob digest {digest!r}")
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


class LayoutStore:
    """The blobs of an OCI layout directory."""

    def __init__(self, root: Path, what: str) -> None:
        self._root = root
        self._what = what

    def _path(self, digest: str) -> Path:
        path = self._root / blob_name(digest, self._what)
        if not path.is_file():
            raise ImageNotFoundError(f"{self._what}: blob {digest} is missing from the layout")
        return path

    def _read_small(self, digest: str, limits: Limits) -> bytes:
        path = self._path(digest)
        if path.stat().st_size > limits.max_manifest_bytes:
            raise ManifestError(
                f"{self._what}: blob {digest} is larger than {limits.max_manifest_bytes} bytes"
            )
        data = path.read_bytes()
        verify_digest(data, digest, f"{self._what}: blob {digest}")
        return data

    def read_manifest(self, digest: str, limits: Limits) -> bytes:
        return self._read_small(digest, limits)

    def read_blob(self, digest: str, limits: Limits) -> bytes:
        return self._read_small(digest, limits)

    @contextmanager
    def open_blob(self, layer: LayerInfo) -> Iterator[BlobStream]:
        with open(self._path(layer.digest), "rb", buffering=0) as f:
            yield f

    def close(self) -> None:
        pass


def read_layout_index(index_bytes: bytes, tag: str | None, what: str) -> Descriptor:
    """The index.json entry to start from."""
    entries = parse_index(parse_json(index_bytes, f"{what}: index.json"), f"{what}: index.json")
    return select_by_tag(entries, tag, what)


def open_oci_layout(ref: ImageReference, platform: Platform, limits: Limits) -> BlobStoreSource:
    assert ref.path is not None
    root = Path(ref.path)
    what = ref.raw
    index = root / "index.json"
    if not root.is_dir() or not index.is_file() or not (root / "oci-layout").is_file():
        raise ImageNotFoundError(
            f"{what}: {root} is not an OCI image layout (needs oci-layout and index.json)"
        )

    def first() -> Descriptor:
        if os.path.getsize(index) > limits.max_manifest_bytes:
            raise ManifestError(f"{what}: index.json is larger than {limits.max_manifest_bytes}")
        return read_layout_index(index.read_bytes(), ref.tag, what)

    base = ImageInfo(reference=ref.raw, transport=ref.transport.value, tag=ref.tag)
    return BlobStoreSource(LayoutStore(root, what), first, base, platform, limits)
