"""What the console needs from a registry, whatever its kind: say whether it can be used (and what
is wrong when it cannot), list its repositories and tags, and describe a tag (digest, created).

Errors are the image layer's: `RegistryError` (and `AuthError`) from `tidegate.core.errors`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tidegate.core.errors import RegistryError

__all__ = [
    "ConnectionProblem",
    "ConnectionReport",
    "RegistryAdapter",
    "RegistryConnection",
    "RegistryError",
    "RegistryKind",
    "TagInfo",
]


class RegistryKind(StrEnum):
    DISTRIBUTION = "distribution"
    """OCI distribution / Docker Registry HTTP API v2 (CNCF Distribution, Zot, GitLab, ...)."""
    HARBOR = "harbor"
    """Harbor: the distribution API, plus its own project API when the catalog is closed."""


@dataclass(frozen=True, slots=True)
class RegistryConnection:
    """How to reach one registry."""

    url: str
    """"https://host[:port]" or "http://host[:port]" (plain http: local registries only)."""
    username: str | None = None
    password: str | None = None
    token: str | None = None
    """A static bearer token, sent as is (instead of a username and password)."""
    insecure: bool = False
    """Skip TLS verification."""
    ca_pem: str | None = None
    """PEM of the CA that signed the registry's certificate."""


class ConnectionProblem(StrEnum):
    DNS = "dns"
    REFUSED = "refused"
    TLS = "tls"
    TIMEOUT = "timeout"
    AUTH = "auth"
    NOT_REGISTRY = "not_registry"
    HTTP = "http"


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """The answer of a connection test: ok, or the problem and a sentence about it."""

    ok: bool
    message: str
    problem: ConnectionProblem | None = None
    auth_scheme: str | None = None
    """The scheme the registry challenged with ("basic", "bearer"), when it asked for one."""
    api_version: str | None = None
    """Its `Docker-Distribution-API-Version` header ("registry/2.0")."""


@dataclass(frozen=True, slots=True)
class TagInfo:
    repository: str
    tag: str
    digest: str
    """The manifest (or index) digest the tag points at."""
    created: datetime | None
    """The image config's `created` (of the first platform for an index); None if absent."""


class RegistryAdapter(ABC):
    """One registry, as the console's ingest sees it."""

    @abstractmethod
    def check(self) -> ConnectionReport:
        """Probe `/v2/` with the credentials; never raises for a network or HTTP problem."""

    @abstractmethod
    def repositories(self) -> Iterator[str]:
        """Every repository name, in the registry's order."""

    @abstractmethod
    def tags(self, repository: str) -> list[str]:
        """The tags of one repository."""

    @abstractmethod
    def describe(self, repository: str, tag: str) -> TagInfo:
        """The digest and creation date of one tag."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and temporary files."""
