"""`oci-archive:FILE[:TAG]` and `docker-archive:FILE[:REF]`: images inside one tar file.

Neither archive is extracted: the tar's member table is read once (headers only), then every
manifest, config and layer is read straight out of the archive file at its member offset with
`os.pread`, so several layers can stream at once from one file descriptor.

docker-archive is `docker save` output: manifest.json lists, per image, its Config file, its
RepoTags and its Layers (tar files, often uncompressed, named by their diff_id). There is no
manifest digest; layers are verified against their diff_ids from the config.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import Any

from tidegate.core.errors import ImageError, ImageNotFoundError, ManifestError, ReferenceError_
from tidegate.core.files import normalize_path
from tidegate.core.models import ImageInfo, LayerInfo
from tidegate.image.interface import LayerItem, Limits, ResolvedImage
from tidegate.image.layer import BlobStream, Verify, read_layer
from tidegate.image.manifest import (
    BlobStoreSource,
    Descriptor,
    Platform,
    config_diff_ids,
    config_platform,
    parse_json,
    sha256_digest,
    verify_digest,
)
from tidegate.image.oci import blob_name, read_layout_index
from tidegate.image.reference import ImageReference, parse_registry_reference

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"


class _Range:
    """A file-like view of `size` bytes at `offset` of a shared descriptor (positionless)."""

    __slots__ = ("_end", "_fd", "_pos")

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._pos = offset
        self._end = offset + size

    def read(self, size: int = -1, /) -> bytes:
        left = self._end - self._pos
        n = left if size < 0 or size > left else size
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._pos)
        self._pos += len(data)
        return data


class TarArchive:
    """The regular-file members of a tar archive, by normalised path, readable at random."""

    def __init__(self, path: str, what: str, limits: Limits) -> None:
        self.what = what
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise ImageNotFoundError(f"{what}: archive {path} does not exist") from None
        except OSError as exc:
            raise ImageError(f"{what}: cannot open archive {path}: {exc.strerror}") from exc
        try:
            self.members = self._scan(limits)
        except BaseException:
            os.close(self._fd)
            raise

    def _scan(self, limits: Limits) -> dict[str, tuple[int, int]]:
        members: dict[str, tuple[int, int]] = {}
        try:
            with os.fdopen(os.dup(self._fd), "rb") as f, tarfile.open(fileobj=f, mode="r:") as tf:
                for count, info in enumerate(tf, 1):
                    if count > limits.max_entries:
                        raise ImageError(f"{self.what}: more than {limits.max_entries} members")
                    name = normalize_path(info.name)
                    if info.isreg() and name is not None:
                        members[name.lstrip("/")] = (info.offset_data, info.size)
        except tarfile.TarError as exc:
            raise ImageError(f"{self.what}: not a readable tar archive: {exc}") from exc
        return members

    def open(self, name: str) -> _Range:
        try:
            offset, size = self.members[name]
        except KeyError:
            raise ImageNotFoundError(f"{self.what}: archive has no {name}") from None
        return _Range(self._fd, offset, size)

    def read(self, name: str, limit: int) -> bytes:
        _, size = self.members.get(name, (0, 0))
        if size > limit:
            raise ManifestError(f"{self.what}: {name} is larger than {limit} bytes")
        data = self.open(name).read()
        if len(data) != size:
            raise ImageError(f"{self.what}: archive is truncated inside {name}")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class ArchiveLayoutStore:
    """The blobs of an OCI layout stored inside a tar (oci-archive)."""

    def __init__(self, archive: TarArchive) -> None:
        self._archive = archive

    def read_manifest(self, digest: str, limits: Limits) -> bytes:
        return self.read_blob(digest, limits)

    def read_blob(self, digest: str, limits: Limits) -> bytes:
        what = self._archive.what
        data = self._archive.read(blob_name(digest, what), limits.max_manifest_bytes)
        verify_digest(data, digest, f"{what}: blob {digest}")
        return data

    @contextmanager
    def open_blob(self, layer: LayerInfo) -> Iterator[BlobStream]:
        yield self._archive.open(blob_name(layer.digest, self._archive.what))

    def close(self) -> None:
        self._archive.close()


def open_oci_archive(ref: ImageReference, platform: Platform, limits: Limits) -> BlobStoreSource:
    assert ref.path is not None
    archive = TarArchive(ref.path, ref.raw, limits)
    if "oci-layout" not in archive.members or "index.json" not in archive.members:
        archive.close()
        raise ImageNotFoundError(f"{ref.raw}: archive is not an OCI layout (no index.json)")

    def first() -> Descriptor:
        index = archive.read("index.json", limits.max_manifest_bytes)
        return read_layout_index(index, ref.tag, ref.raw)

    base = ImageInfo(reference=ref.raw, transport=ref.transport.value, tag=ref.tag)
    return BlobStoreSource(ArchiveLayoutStore(archive), first, base, platform, limits)


class DockerArchiveSource:
    """`docker save` output, read in place."""

    def __init__(self, ref: ImageReference, limits: Limits) -> None:
        assert ref.path is not None
        self._ref = ref
        self._limits = limits
        self._archive = TarArchive(ref.path, ref.raw, limits)
        self._layer_files: dict[str, str] = {}

    def resolve(self) -> ResolvedImage:
        what = self._ref.raw
        raw = self._archive.read("manifest.json", self._limits.max_manifest_bytes)
        try:
            images = json.loads(raw)
        except ValueError as exc:
            raise ManifestError(f"{what}: manifest.json is not valid JSON: {exc}") from exc
        if not isinstance(images, list) or not all(isinstance(i, dict) for i in images):
            raise ManifestError(f"{what}: manifest.json is not a list of images")
        image, repo_tag = self._select(images)
        config_name = image.get("Config")
        layers = image.get("Layers")
        if not isinstance(config_name, str) or not isinstance(layers, list):
            raise ManifestError(f"{what}: manifest.json entry without Config and Layers")
        config_bytes = self._archive.read(
            _member(config_name, what), self._limits.max_manifest_bytes
        )
        config = parse_json(config_bytes, f"{what}: config {config_name}")
        infos = self._layers([_member(str(n), what) for n in layers], config)
        info = ImageInfo(
            reference=what,
            transport=self._ref.transport.value,
            config_digest=sha256_digest(config_bytes),
            platform=config_platform(config),
            layers=infos,
            media_type="",  # docker-archive has no manifest of its own
        )
        if repo_tag is not None:
            named = parse_registry_reference(repo_tag)
            info = replace(
                info, registry=named.registry, repository=named.repository, tag=named.tag
            )
        return ResolvedImage(info=info, config=config, layers=infos)

    def _select(self, images: list[dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
        what, ref = self._ref.raw, self._ref
        if ref.index is not None:
            if ref.index >= len(images):
                raise ImageNotFoundError(f"{what}: archive holds only {len(images)} images")
            return images[ref.index], _first_tag(images[ref.index])
        if ref.repository is None:
            if len(images) != 1:
                raise ImageNotFoundError(
                    f"{what}: archive holds {len(images)} images; choose one with :NAME:TAG or @N"
                )
            return images[0], _first_tag(images[0])
        for image in images:
            for tag in image.get("RepoTags") or []:
                try:
                    named = parse_registry_reference(str(tag))
                except ReferenceError_:
                    continue
                if (named.registry, named.repository, named.tag) == (
                    ref.registry,
                    ref.repository,
                    ref.tag,
                ):
                    return image, str(tag)
        raise ImageNotFoundError(f"{what}: no image in the archive is tagged {ref.name}")

    def _layers(self, names: list[str], config: dict[str, Any]) -> tuple[LayerInfo, ...]:
        what = self._ref.raw
        diff_ids = config_diff_ids(config, what)
        if len(diff_ids) != len(names):
            raise ManifestError(
                f"{what}: manifest.json lists {len(names)} layers but the config has "
                f"{len(diff_ids)} diff_ids"
            )
        infos = []
        for name, diff_id in zip(names, diff_ids, strict=True):
            _, size = self._archive.members.get(name, (0, 0))
            if name not in self._archive.members:
                raise ImageNotFoundError(f"{what}: layer file {name} is missing from the archive")
            # Newer `docker save` names layer blobs blobs/sha256/<hex>: that is their digest.
            digest = (
                "sha256:" + name.rsplit("/", 1)[1] if name.startswith("blobs/sha256/") else diff_id
            )
            self._layer_files[diff_id] = name
            infos.append(LayerInfo(digest, diff_id, size, DOCKER_LAYER))
        return tuple(infos)

    def open_layer(self, layer: LayerInfo) -> AbstractContextManager[Iterator[LayerItem]]:
        return self._open_layer(layer)

    @contextmanager
    def _open_layer(self, layer: LayerInfo) -> Iterator[Iterator[LayerItem]]:
        name = self._layer_files.get(layer.diff_id)
        if name is None:
            raise ImageNotFoundError(f"{self._ref.raw}: no layer with diff_id {layer.diff_id}")
        # The files are named by content either way, but only the diff_id is always known.
        items = read_layer(self._archive.open(name), layer, self._limits, verify=Verify.DIFF_ID)
        try:
            yield items
        finally:
            items.close()

    def close(self) -> None:
        self._archive.close()


def _member(name: str, what: str) -> str:
    path = normalize_path(name)
    if path is None or path == "/":
        raise ManifestError(f"{what}: manifest.json names an invalid member {name!r}")
    return path.lstrip("/")


def _first_tag(image: dict[str, Any]) -> str | None:
    tags = image.get("RepoTags") or []
    return str(tags[0]) if tags else None
