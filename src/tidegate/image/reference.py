"""Image references as users write them: skopeo's transport names and docker's registry names.

    oci:DIR[:TAG]              an OCI image layout directory (TAG: its ref.name annotation)
    oci-archive:FILE[:TAG]     a tar of an OCI image layout
    docker-archive:FILE[:REF]  `docker save` output (REF: one of its RepoTags, or @N: Nth image)
    dir:ROOTFS                 an unpacked root filesystem (not skopeo's `dir:` blob layout)
    [docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]   an image in a registry
    NAME[:TAG]                 docker's short names: docker.io, and library/ for one-component names

Parsing is pure: nothing is opened here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from tidegate.core.errors import ReferenceError_

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
"""Where docker.io's distribution API actually answers."""

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?"
)


class Transport(StrEnum):
    OCI = "oci"
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"
    DIR = "dir"
    DOCKER = "docker"
    """A registry, over the OCI distribution API."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed reference; which fields are set depends on the transport."""

    raw: str
    """As the user wrote it."""
    transport: Transport
    path: str | None = None
    """The directory or file of a local transport."""
    tag: str | None = None
    """OCI layout ref name, registry tag, or docker-archive RepoTag to select."""
    registry: str | None = None
    """Registry host[:port] as named ("docker.io" for Docker Hub)."""
    repository: str | None = None
    digest: str | None = None
    """Registry manifest digest from `@sha256:...`."""
    index: int | None = None
    """docker-archive `@N`: the Nth image of the archive."""

    @property
    def api_host(self) -> str | None:
        """The host[:port] to talk HTTP to (Docker Hub's API lives on another name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """Canonical registry name "host/repo[:tag][@digest]"."""
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(raw: str) -> ImageReference:
    """Parse any supported reference; `ReferenceError_` names the input and what is wrong."""
    if not raw or raw != raw.strip():
        raise ReferenceError_(f"invalid image reference {raw!r}: empty or surrounded by spaces")
    prefix, sep, rest = raw.partition(":")
    if raw.startswith("docker://"):
        return parse_registry_reference(raw[len("docker://") :], raw=raw)
    if sep:
        match prefix:
            case "oci" | "oci-archive":
                return _layout_reference(raw, Transport(prefix), rest)
            case "docker-archive":
                return _docker_archive_reference(raw, rest)
            case "dir":
                if not rest:
                    raise ReferenceError_(f"invalid image reference {raw!r}: dir: needs a path")
                return ImageReference(raw=raw, transport=Transport.DIR, path=rest)
            case "docker":
                raise ReferenceError_(
                    f"invalid image reference {raw!r}: the docker transport is written "
                    f"docker://HOST/REPO[:TAG]"
                )
    return parse_registry_reference(raw, raw=raw)


def _layout_reference(raw: str, transport: Transport, rest: str) -> ImageReference:
    # skopeo splits an OCI path from its ref name at the first colon.
    path, _, tag = rest.partition(":")
    if not path:
        raise ReferenceError_(f"invalid image reference {raw!r}: {transport}: needs a path")
    if ":" in rest and not tag:
        raise ReferenceError_(f"invalid image reference {raw!r}: empty tag after ':'")
    return ImageReference(raw=raw, transport=transport, path=path, tag=tag or None)


def _docker_archive_reference(raw: str, rest: str) -> ImageReference:
    path, _, selector = rest.partition(":")
    if not path:
        raise ReferenceError_(f"invalid image reference {raw!r}: docker-archive: needs a path")
    if not selector:
        return ImageReference(raw=raw, transport=Transport.DOCKER_ARCHIVE, path=path)
    if selector.startswith("@"):
        if not selector[1:].isdigit():
            raise ReferenceError_(
                f"invalid image reference {raw!r}: @N must be an image index, got {selector!r}"
            )
        return ImageReference(
            raw=raw, transport=Transport.DOCKER_ARCHIVE, path=path, index=int(selector[1:])
        )
    named = parse_registry_reference(selector, raw=raw)
    if named.digest:
        raise ReferenceError_(f"invalid image reference {raw!r}: docker-archive takes a tag")
    return ImageReference(
        raw=raw,
        transport=Transport.DOCKER_ARCHIVE,
        path=path,
        registry=named.registry,
        repository=named.repository,
        tag=named.tag or "latest",
    )


def parse_registry_reference(ref: str, *, raw: str | None = None) -> ImageReference:
    """`HOST[:PORT]/REPO[:TAG|@DIGEST]` with docker's defaults for short names."""
    raw = ref if raw is None else raw
    name, at, digest = ref.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ReferenceError_(
            f"invalid image reference {raw!r}: digest {digest!r} is not sha256:<64 hex> "
            f"or sha512:<128 hex>"
        )
    registry, remainder = _split_registry(name)
    repo, tag = remainder, None
    last = remainder.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = remainder.rsplit(":", 1)
        if not _TAG.fullmatch(tag):
            raise ReferenceError_(f"invalid image reference {raw!r}: invalid tag {tag!r}")
    if not _REPOSITORY.fullmatch(repo):
        raise ReferenceError_(
            f"invalid image reference {raw!r}: repository {repo!r} must be lowercase "
            f"letters, digits and separators (. _ - /)"
        )
    if registry == DOCKER_HUB and "/" not in repo:
        repo = f"library/{repo}"
    if tag is None and not at:
        tag = "latest"
    return ImageReference(
        raw=raw,
        transport=Transport.DOCKER,
        registry=registry,
        repository=repo,
        tag=tag,
        digest=digest or None,
    )


def _split_registry(name: str) -> tuple[str, str]:
    """Docker's rule: the first component is a host when it has '.' or ':' or is localhost."""
    first, slash, rest = name.partition("/")
    if not slash:
        return DOCKER_HUB, name
    is_host = "." in first or ":" in first or first == "localhost" or first != first.lower()
    if not is_host:
        return DOCKER_HUB, name
    if not _HOST.fullmatch(first):
        raise ReferenceError_(f"invalid image reference {name!r}: invalid registry host {first!r}")
    if first == "index.docker.io":
        first = DOCKER_HUB
    return first, rest
