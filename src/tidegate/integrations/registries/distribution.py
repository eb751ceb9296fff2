"""The OCI distribution API (Docker Registry HTTP API v2) as a `RegistryAdapter`.

`GET /v2/` to check, `/v2/_catalog` and `/v2/<repo>/tags/list` followed through their `Link`
pages, manifests by tag for digests, the image config for the created date. HTTP, TLS and
authentication (basic, bearer token service, static token) are `tidegate.image.registry`'s
`RegistryStore`: one per repository, since a token service grants one repository's scope.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from tidegate.core.errors import AuthError, ImageError, RegistryError, UsageError
from tidegate.image.interface import Limits
from tidegate.image.manifest import (
    Descriptor,
    Platform,
    parse_json,
    resolve_manifest,
    sha256_digest,
)
from tidegate.image.reference import ImageReference, Transport
from tidegate.image.registry import RegistryCredentials, RegistryStore, parse_challenge
from tidegate.integrations.registries.interface import (
    ConnectionProblem,
    ConnectionReport,
    RegistryAdapter,
    RegistryConnection,
    TagInfo,
)

PAGE_SIZE = 100
MAX_PAGES = 10_000
"""A registry that keeps sending `next` links past this many pages is broken or hostile."""
PLATFORM = Platform("linux", "amd64")
"""Whose config dates a multi-platform tag."""
_LIMITS = Limits()


def split_url(url: str) -> tuple[str, str]:
    """ "https://host:port[/]" -> ("https", "host:port"); UsageError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"registry url {url!r}: expected http(s)://host[:port]")
    if parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise UsageError(f"registry url {url!r}: give only scheme and host[:port], no path")
    return parts.scheme, parts.netloc.lower()


class _ApiStore(RegistryStore):
    """A RegistryStore that also answers the API calls pulling an image does not need."""

    def __init__(
        self,
        conn: RegistryConnection,
        repository: str,
        ca_file: str | None,
        transport: httpx.BaseTransport | None,
    ) -> None:
        scheme, host = split_url(conn.url)
        ref = ImageReference(
            raw=f"{host}/{repository}",
            transport=Transport.DOCKER,
            registry=host,
            repository=repository,
        )
        creds = RegistryCredentials(conn.username, conn.password, conn.token)
        super().__init__(ref, creds, ca_file=ca_file, insecure=conn.insecure, transport=transport)
        self._base = scheme  # the operator said which scheme: no https-then-http guessing

    def probe(self) -> httpx.Response:
        """`GET /v2/` without credentials (to see the challenge)."""
        response = self._send("/v2/", {}, False)
        response.read()
        return response

    def get(self, path: str) -> httpx.Response:
        """An authenticated GET; raises for anything but 200."""
        response = self._get(path, {"Accept": "application/json"})
        if response.status_code != 200:
            response.read()
            self._fail(response, f"GET {path}")
        return response

    def get_json(self, path: str) -> tuple[Any, str | None]:
        """The JSON body of GET `path` and the path of its `Link: <...>; rel="next"`."""
        response = self.get(path)
        try:
            body = response.json()
        except ValueError as exc:
            raise RegistryError(f"{self._where()}: GET {path} did not answer JSON") from exc
        link = response.links.get("next", {}).get("url")
        if link:
            parts = urlsplit(link)
            link = parts.path + (f"?{parts.query}" if parts.query else "")
        return body, link

    def manifest(self, tag: str) -> Descriptor:
        data, media_type = self._fetch_manifest(tag, _LIMITS)
        digest = sha256_digest(data)
        self._manifests[digest] = data
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def request(self, path: str, **kwargs: Any) -> httpx.Response:
        """A request to a non-distribution API of the same host (Harbor's /api/v2.0)."""
        assert self._base is not None
        try:
            return self._client.get(f"{self._base}://{self._host}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryError(f"cannot reach {self._where()}: {exc}") from exc


class DistributionRegistry(RegistryAdapter):
    def __init__(
        self, conn: RegistryConnection, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        split_url(conn.url)
        self.conn = conn
        self._transport = transport
        self._ca_file: str | None = None
        if conn.ca_pem and not conn.insecure:
            # RegistryStore takes a CA file: the PEM lives in a private temp file until close().
            fd, self._ca_file = tempfile.mkstemp(prefix="tidegate-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as out:
                out.write(conn.ca_pem)
        self._stores: dict[str, _ApiStore] = {}

    def store(self, repository: str) -> _ApiStore:
        if repository not in self._stores:
            self._stores[repository] = _ApiStore(
                self.conn, repository, self._ca_file, self._transport
            )
        return self._stores[repository]

    # -- check -----------------------------------------------------------------------------

    def check(self) -> ConnectionReport:
        store = self.store("")
        try:
            first = store.probe()
        except RegistryError as exc:
            return _network_report(self.conn.url, exc)
        scheme: str | None = None
        answer = first
        if first.status_code == 401:
            scheme, params = parse_challenge(first.headers.get("www-authenticate", ""))
            try:
                answer = store.get("/v2/")
            except AuthError as exc:
                where = f" (realm {params['realm']!r})" if "realm" in params else ""
                return ConnectionReport(
                    False,
                    f"401: the registry asks for {scheme or 'unknown'} authentication{where}: "
                    f"{exc}",
                    ConnectionProblem.AUTH,
                    auth_scheme=scheme,
                )
            except RegistryError as exc:
                return _network_report(self.conn.url, exc)
        elif first.status_code != 200:
            return _not_registry(self.conn.url, f"GET /v2/ answered {first.status_code}")
        version = answer.headers.get("docker-distribution-api-version") or first.headers.get(
            "docker-distribution-api-version"
        )
        if not version or not version.startswith("registry/2"):
            return _not_registry(self.conn.url, "GET /v2/ has no Docker-Distribution-API-Version")
        how = f" with {scheme} authentication" if scheme else " anonymously"
        return ConnectionReport(
            True, f"{self.conn.url}: {version} answers{how}", None, scheme, version
        )

    # -- listing ---------------------------------------------------------------------------

    def repositories(self) -> Iterator[str]:
        yield from self._paged("", f"/v2/_catalog?n={PAGE_SIZE}", "repositories")

    def tags(self, repository: str) -> list[str]:
        return list(self._paged(repository, f"/v2/{repository}/tags/list?n={PAGE_SIZE}", "tags"))

    def _paged(self, repository: str, path: str | None, key: str) -> Iterator[str]:
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            if path is None or path in seen:
                return
            seen.add(path)
            body, path = self.store(repository).get_json(path)
            items = body.get(key) if isinstance(body, dict) else None
            if items is None:
                return  # distribution answers `"tags": null` for a repository without tags
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise RegistryError(f"{self.conn.url}: {key} of {path!r} is not a list of names")
            yield from items
        raise RegistryError(f"{self.conn.url}: more than {MAX_PAGES} pages of {key}")

    def describe(self, repository: str, tag: str) -> TagInfo:
        store = self.store(repository)
        root = store.manifest(tag)
        return TagInfo(repository, tag, root.digest, self._created(store, root, repository, tag))

    def _created(self, store: _ApiStore, root: Descriptor, repo: str, tag: str) -> datetime | None:
        what = f"{self.conn.url}/{repo}:{tag}"
        try:
            _, manifest = resolve_manifest(store, root, PLATFORM, _LIMITS, what)
            config_digest = manifest["config"]["digest"]
            config = parse_json(store.read_blob(config_digest, _LIMITS), f"{what}: config")
        except (ImageError, KeyError, TypeError):
            return None  # no amd64 image or no config: undated, which max_age treats as old
        return parse_created(config.get("created"))

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        if self._ca_file:
            with contextlib.suppress(OSError):
                os.unlink(self._ca_file)
            self._ca_file = None


def parse_created(value: Any) -> datetime | None:
    """An RFC 3339 `created` (nanoseconds and "Z" allowed); None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:  # Go writes nanoseconds; Python reads microseconds
        head, _, rest = text.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        created = datetime.fromisoformat(text)
    except ValueError:
        return None
    return created if created.tzinfo else None


def _network_report(url: str, exc: RegistryError) -> ConnectionReport:
    text = str(exc)
    lower = text.lower()
    if any(
        s in lower
        for s in (
            "name or service not known",
            "nodename",
            "name resolution",
            "getaddrinfo",
            "no address associated",
        )
    ):
        problem, why = ConnectionProblem.DNS, "the host name does not resolve (DNS)"
    elif "certificate" in lower or "ssl" in lower or "tls" in lower:
        problem, why = (
            ConnectionProblem.TLS,
            (
                "TLS failed (an untrusted or mismatched certificate, or a plain-http registry "
                "named https): give its CA certificate, or mark it insecure"
            ),
        )
    elif "refused" in lower:
        problem, why = ConnectionProblem.REFUSED, "connection refused (nothing listens there)"
    elif "timed out" in lower or "timeout" in lower:
        problem, why = ConnectionProblem.TIMEOUT, "no answer in time"
    else:
        problem, why = ConnectionProblem.HTTP, "the registry cannot be reached"
    return ConnectionReport(False, f"{url}: {why}: {text}", problem)


def _not_registry(url: str, what: str) -> ConnectionReport:
    return ConnectionReport(
        False,
        f"{url}: not an OCI distribution registry ({what}; expected 200 or 401 with "
        "Docker-Distribution-API-Version: registry/2.0)",
        ConnectionProblem.NOT_REGISTRY,
    )
