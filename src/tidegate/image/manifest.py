"""OCI and Docker v2 manifests, indexes and configs: parsing, platform choice, digest checks.

Every source that stores blobs by digest (OCI layout, oci-archive, registry) resolves an image the
same way: follow indexes down to one manifest for the wanted platform, read its config, pair its
layers with the config's diff_ids. That walk lives here (`resolve_image`) over a small `BlobStore`
protocol, and so does `BlobStoreSource`, the `ImageSource` those transports share.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from tidegate.core.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    UsageError,
)
from tidegate.core.models import ImageInfo, LayerInfo
from tidegate.image.interface import LayerItem, Limits, ResolvedImage
from tidegate.image.layer import BlobStream, Verify, read_layer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
"""The Accept header a registry client sends for manifests."""
_LAYER_SUFFIXES = (".tar", ".tar+gzip", ".tar.gzip", ".tar+zstd", "layer.v1.tar", "rootfs.diff.tar")
_MAX_NESTING = 8
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True, slots=True)
class Platform:
    """os/architecture[/variant], as `--platform` takes it."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def matches(self, other: Platform) -> bool:
        """Does an index entry's `other` platform satisfy this wanted one?"""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if not self.variant:
            return True
        # arm64 images often omit their (only) variant v8.
        return self.variant == (other.variant or ("v8" if other.architecture == "arm64" else ""))


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)


class BlobStore(Protocol):
    """Content-addressed storage of one repository's manifests and blobs."""

    def read_manifest(self, digest: str, limits: Limits) -> bytes:
        """A manifest or index by digest, verified, at most `limits.max_manifest_bytes`."""
        ...

    def read_blob(self, digest: str, limits: Limits) -> bytes:
        """A small blob (a config) by digest, verified, at most `limits.max_manifest_bytes`."""
        ...

    def open_blob(self, layer: LayerInfo) -> AbstractContextManager[BlobStream]:
        """Stream a layer blob (unverified: the layer reader checks it as it reads)."""
        ...

    def close(self) -> None: ...


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ManifestError(f"{what}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestError(f"{what}: expected a JSON object, got {type(doc).__name__}")
    return doc


def verify_digest(data: bytes, digest: str, what: str) -> None:
    """DigestMismatchError unless `data` hashes to `digest` ("sha256:..." or "sha512:...")."""
    algo, _, expected = digest.partition(":")
    if algo not in ("sha256", "sha512"):
        raise ManifestError(f"{what}: unsupported digest algorithm in {digest!r}")
    actual = hashlib.new(algo, data).hexdigest()
    if actual != expected.lower():
        raise DigestMismatchError(
            f"{what}: content hashes to {algo}:{actual}, not {digest} that names it"
        )


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_descriptor(obj: Any, what: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise ManifestError(f"{what}: descriptor is not an object")
    digest, size, media_type = obj.get("digest"), obj.get("size", 0), obj.get("mediaType", "")
    if not isinstance(digest, str) or ":" not in digest:
        raise ManifestError(f"{what}: descriptor without a valid digest: {digest!r}")
    if not isinstance(size, int) or size < 0 or not isinstance(media_type, str):
        raise ManifestError(f"{what}: descriptor {digest} has an invalid size or media type")
    plat = obj.get("platform")
    platform = None
    if isinstance(plat, dict):
        platform = Platform(
            str(plat.get("os", "")), str(plat.get("architecture", "")), str(plat.get("variant", ""))
        )
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ManifestError(f"{what}: descriptor {digest} has invalid annotations")
    return Descriptor(
        media_type, digest, size, platform, {str(k): str(v) for k, v in annotations.items()}
    )


def media_type_of(doc: dict[str, Any], declared: str) -> str:
    """The document's own mediaType, else the one its descriptor declared."""
    mt = doc.get("mediaType") or declared
    if not mt and "manifests" in doc:
        return OCI_INDEX
    if not mt and "layers" in doc:
        return OCI_MANIFEST
    return str(mt)


def parse_index(doc: dict[str, Any], what: str) -> list[Descriptor]:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ManifestError(f"{what}: index without a 'manifests' list")
    return [parse_descriptor(m, f"{what} manifests[{i}]") for i, m in enumerate(manifests)]


def select_platform(entries: list[Descriptor], platform: Platform, what: str) -> Descriptor:
    images = [d for d in entries if d.platform is not None and d.platform.os != "unknown"]
    for d in images:
        assert d.platform is not None
        if platform.matches(d.platform):
            return d
    if not images and len(entries) == 1:
        return entries[0]  # an index of one manifest without platform: nothing to choose
    have = ", ".join(sorted(str(d.platform) for d in images)) or "none"
    raise ImageNotFoundError(f"{what}: no image for platform {platform} (available: {have})")


def resolve_manifest(
    store: BlobStore, first: Descriptor, platform: Platform, limits: Limits, what: str
) -> tuple[Descriptor, dict[str, Any]]:
    """Follow indexes from `first` down to one image manifest for `platform`."""
    desc = first
    for _ in range(_MAX_NESTING):
        data = store.read_manifest(desc.digest, limits)
        doc = parse_json(data, f"{what}: manifest {desc.digest}")
        mt = media_type_of(doc, desc.media_type)
        if mt in INDEX_TYPES:
            desc = select_platform(parse_index(doc, f"{what}: index {desc.digest}"), platform, what)
            continue
        if mt in MANIFEST_TYPES:
            return replace(desc, media_type=mt, size=len(data)), doc
        if mt in DOCKER_SCHEMA1:
            raise ManifestError(f"{what}: Docker schema 1 manifests are not supported ({mt})")
        raise ManifestError(f"{what}: manifest {desc.digest} has unsupported media type {mt!r}")
    raise ManifestError(f"{what}: indexes nested more than {_MAX_NESTING} deep")


def image_layers(
    manifest: dict[str, Any], config: dict[str, Any], what: str
) -> tuple[LayerInfo, ...]:
    """The manifest's layers paired with the config's diff_ids, bottom first."""
    raw_layers = manifest.get("layers")
    if not isinstance(raw_layers, list):
        raise ManifestError(f"{what}: manifest without a 'layers' list")
    layers = [parse_descriptor(d, f"{what} layers[{i}]") for i, d in enumerate(raw_layers)]
    diff_ids = config_diff_ids(config, what)
    if len(diff_ids) != len(layers):
        raise ManifestError(
            f"{what}: manifest has {len(layers)} layers but config rootfs has {len(diff_ids)} "
            f"diff_ids"
        )
    for d in layers:
        if d.media_type and not d.media_type.endswith(_LAYER_SUFFIXES):
            raise ManifestError(
                f"{what}: layer {d.digest} has unsupported media type {d.media_type!r}"
            )
    return tuple(
        LayerInfo(d.digest, diff, d.size, d.media_type)
        for d, diff in zip(layers, diff_ids, strict=True)
    )


def config_diff_ids(config: dict[str, Any], what: str) -> list[str]:
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ManifestError(f"{what}: config without a valid rootfs.diff_ids list")
    return diff_ids


def config_platform(config: dict[str, Any]) -> str:
    return str(
        Platform(
            str(config.get("os", "")),
            str(config.get("architecture", "")),
            str(config.get("variant", "")),
        )
    )


def resolve_image(
    store: BlobStore,
    first: Descriptor,
    platform: Platform,
    limits: Limits,
    base: ImageInfo,
) -> ResolvedImage:
    """The whole resolution: manifest for the platform, its config, its layers."""
    what = base.reference
    desc, manifest = resolve_manifest(store, first, platform, limits, what)
    config_desc = parse_descriptor(manifest.get("config"), f"{what} config")
    if config_desc.media_type not in (OCI_CONFIG, DOCKER_CONFIG, ""):
        raise ManifestError(
            f"{what}: not a container image: config media type {config_desc.media_type!r}"
        )
    config = parse_json(store.read_blob(config_desc.digest, limits), f"{what}: config")
    layers = image_layers(manifest, config, what)
    info = replace(
        base,
        manifest_digest=desc.digest,
        config_digest=config_desc.digest,
        platform=config_platform(config),
        layers=layers,
        media_type=desc.media_type,
    )
    return ResolvedImage(info=info, config=config, layers=layers)


def select_by_tag(entries: list[Descriptor], tag: str | None, what: str) -> Descriptor:
    """The entry of an OCI layout's index.json named `tag` (or the only one when no tag)."""
    if tag is None:
        if len(entries) == 1:
            return entries[0]
        names = sorted(d.annotations.get(ANNOTATION_REF_NAME, "?") for d in entries)
        raise ImageNotFoundError(
            f"{what}: holds {len(entries)} images; name one with :TAG (tags: {', '.join(names)})"
        )
    for d in entries:
        if d.annotations.get(ANNOTATION_REF_NAME) == tag:
            return d
    names = sorted(d.annotations.get(ANNOTATION_REF_NAME, "?") for d in entries)
    raise ImageNotFoundError(
        f"{what}: no image tagged {tag!r} (tags: {', '.join(names) or 'none'})"
    )


class BlobStoreSource:
    """An `ImageSource` over a `BlobStore`: OCI layouts, oci-archives and registries."""

    def __init__(
        self,
        store: BlobStore,
        first: Callable[[], Descriptor],
        base: ImageInfo,
        platform: Platform,
        limits: Limits,
    ) -> None:
        self._store = store
        self._first = first
        self._base = base
        self._platform = platform
        self._limits = limits

    def resolve(self) -> ResolvedImage:
        return resolve_image(self._store, self._first(), self._platform, self._limits, self._base)

    def open_layer(self, layer: LayerInfo) -> AbstractContextManager[Iterator[LayerItem]]:
        return self._open_layer(layer)

    @contextmanager
    def _open_layer(self, layer: LayerInfo) -> Iterator[Iterator[LayerItem]]:
        with self._store.open_blob(layer) as stream:
            items = read_layer(stream, layer, self._limits, verify=Verify.BLOB)
            try:
                yield items
            finally:
                items.close()

    def close(self) -> None:
        self._store.close()
