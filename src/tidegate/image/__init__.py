"""Image sources: open any supported reference as an `ImageSource`, and squash its layers.

source = open_image("oci:./layout:latest", SourceOptions(platform="linux/arm64"))
try:
    image = source.resolve()
    for layer in image.layers:
        with source.open_layer(layer) as items:
            for item in items: ...
finally:
    source.close()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import assert_never

import httpx

from tidegate.image.archive import DockerArchiveSource, open_oci_archive
from tidegate.image.interface import ImageSource, LayerItem, Limits, ResolvedImage
from tidegate.image.manifest import Platform
from tidegate.image.oci import open_oci_layout
from tidegate.image.reference import ImageReference, Transport, parse_reference
from tidegate.image.registry import RegistryCredentials, open_registry
from tidegate.image.rootfs import RootfsSource
from tidegate.image.squash import LayerPaths, squash

__all__ = [
    "ImageReference",
    "ImageSource",
    "LayerItem",
    "LayerPaths",
    "Limits",
    "Platform",
    "ResolvedImage",
    "SourceOptions",
    "Transport",
    "open_image",
    "parse_reference",
    "squash",
]


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """How to open an image; everything but `platform` and `limits` concerns registries."""

    platform: str = "linux/amd64"
    """os/arch[/variant] chosen from a multi-platform index."""
    username: str | None = None
    password: str | None = None
    token: str | None = None
    """A bearer token to send as is (instead of username/password)."""
    ca_file: str | None = None
    """PEM bundle to verify the registry's TLS certificate with."""
    insecure: bool = False
    """Allow plain http and unverified TLS (local registries)."""
    limits: Limits = field(default_factory=Limits)
    transport: httpx.BaseTransport | None = None
    """The HTTP transport to use (tests pass `httpx.MockTransport`)."""


def open_image(reference: str, options: SourceOptions | None = None) -> ImageSource:
    """Open `reference` (any transport of `tidegate.image.reference`) as an `ImageSource`.

    Local paths are checked now (`ImageNotFoundError`); registries are contacted by `resolve()`.
    """
    options = options or SourceOptions()
    ref = parse_reference(reference)
    platform = Platform.parse(options.platform)
    limits = options.limits
    match ref.transport:
        case Transport.OCI:
            return open_oci_layout(ref, platform, limits)
        case Transport.OCI_ARCHIVE:
            return open_oci_archive(ref, platform, limits)
        case Transport.DOCKER_ARCHIVE:
            return DockerArchiveSource(ref, limits)
        case Transport.DIR:
            return RootfsSource(ref, limits)
        case Transport.DOCKER:
            creds = RegistryCredentials(options.username, options.password, options.token)
            return open_registry(
                ref,
                platform,
                limits,
                creds,
                ca_file=options.ca_file,
                insecure=options.insecure,
                transport=options.transport,
            )
    assert_never(ref.transport)
