"""Registry references: the OCI distribution API over httpx.

Owns the HTTP side of pulling: scheme choice (https; `insecure` also allows unverified TLS and
plain http for local registries), authentication (anonymous, HTTP basic, and bearer tokens from
the registry's token service following its `WWW-Authenticate` challenge), manifest fetches with
the Accept header of every supported manifest type, and blob streams. Manifests are hashed from
the exact bytes received and checked against the digest that named them. HTTP failures become
`RegistryError` / `AuthError` / `ImageNotFoundError` with what to do about them.
Credentials arrive as arguments: reading the environment is the CLI's job.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import httpx

from tidegate.core.errors import AuthError, ImageNotFoundError, ManifestError, RegistryError
from tidegate.core.models import ImageInfo, LayerInfo
from tidegate.image.interface import Limits
from tidegate.image.layer import CHUNK, BlobStream
from tidegate.image.manifest import (
    ACCEPT,
    BlobStoreSource,
    Descriptor,
    Platform,
    sha256_digest,
    verify_digest,
)
from tidegate.image.reference import ImageReference

_CHALLENGE_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_TIMEOUT = httpx.Timeout(30.0, read=120.0)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="...",service="..."` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


class RegistryCredentials:
    """What the user gave to authenticate with (all optional)."""

    __slots__ = ("password", "token", "username")

    def __init__(self, username: str | None, password: str | None, token: str | None) -> None:
        self.username = username
        self.password = password
        self.token = token


class _BlobReader:
    """`read(n)` over a streamed HTTP body."""

    def __init__(self, response: httpx.Response, what: str) -> None:
        self._chunks = response.iter_raw(CHUNK)
        self._buf = b""
        self._what = what

    def read(self, size: int = -1, /) -> bytes:
        while size < 0 or len(self._buf) < size:
            try:
                chunk = next(self._chunks, b"")
            except httpx.HTTPError as exc:
                raise RegistryError(
                    f"{self._what}: connection failed while streaming: {exc}"
                ) from exc
            if not chunk:
                break
            self._buf += chunk
        if size < 0:
            data, self._buf = self._buf, b""
        else:
            data, self._buf = self._buf[:size], self._buf[size:]
        return data


class RegistryStore:
    """One repository of one registry, as a `BlobStore`."""

    def __init__(
        self,
        ref: ImageReference,
        creds: RegistryCredentials,
        *,
        ca_file: str | None = None,
        insecure: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        assert ref.api_host is not None
        assert ref.repository is not None
        self._ref = ref
        self._host = ref.api_host
        self._repo = ref.repository
        self._creds = creds
        self._insecure = insecure
        verify: ssl.SSLContext | bool = not insecure
        if ca_file and not insecure:
            verify = ssl.create_default_context(cafile=ca_file)
        self._client = httpx.Client(
            verify=verify, transport=transport, follow_redirects=True, timeout=_TIMEOUT
        )
        self._base: str | None = None
        self._auth: dict[str, str] = {}
        if creds.token:
            self._auth = {"Authorization": f"Bearer {creds.token}"}
        self._manifests: dict[str, bytes] = {}

    # -- HTTP plumbing ---------------------------------------------------------------------

    def _where(self) -> str:
        return f"registry {self._ref.registry} for repo {self._repo}"

    def _send(self, path: str, headers: dict[str, str], stream: bool) -> httpx.Response:
        schemes = (
            [self._base] if self._base else (["https", "http"] if self._insecure else ["https"])
        )
        last: httpx.HTTPError | None = None
        for scheme in schemes:
            request = self._client.build_request(
                "GET", f"{scheme}://{self._host}{path}", headers={**headers, **self._auth}
            )
            try:
                response = self._client.send(request, stream=stream)
            except httpx.ConnectError as exc:
                last = exc  # an http-only registry refuses the TLS handshake: try plain http
                continue
            except httpx.HTTPError as exc:
                raise RegistryError(f"cannot reach {self._where()}: {exc}") from exc
            self._base = scheme
            return response
        hint = ""
        if "CERTIFICATE_VERIFY_FAILED" in str(last):
            hint = " (give its CA with --ca-file, or use --insecure for a local registry)"
        elif not self._insecure:
            hint = " (use --insecure for a plain-http local registry)"
        raise RegistryError(f"cannot reach {self._where()}: {last}{hint}") from last

    def _get(self, path: str, headers: dict[str, str], *, stream: bool = False) -> httpx.Response:
        response = self._send(path, headers, stream)
        if response.status_code == 401 and "Authorization" not in response.request.headers:
            response.close()
            self._authenticate(response)
            response = self._send(path, headers, stream)
        if response.status_code in (401, 403):
            response.close()
            raise AuthError(self._auth_message(response.status_code))
        return response

    def _auth_message(self, status: int) -> str:
        if self._creds.username or self._creds.token:
            return (
                f"{status} from {self._where()}: credentials refused (check --username/--password)"
            )
        return f"{status} from {self._where()}: credentials required (use --username/--password)"

    def _authenticate(self, response: httpx.Response) -> None:
        scheme, params = parse_challenge(response.headers.get("www-authenticate", ""))
        user, password = self._creds.username, self._creds.password
        if scheme == "basic":
            if not user:
                raise AuthError(self._auth_message(401))
            raw = f"{user}:{password or ''}".encode()
            self._auth = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        elif scheme == "bearer" and "realm" in params:
            self._auth = {"Authorization": f"Bearer {self._fetch_token(params)}"}
        else:
            raise AuthError(f"401 from {self._where()}: unsupported authentication {scheme!r}")

    def _fetch_token(self, params: dict[str, str]) -> str:
        query = {"scope": params.get("scope") or f"repository:{self._repo}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        auth = None
        if self._creds.username:
            auth = httpx.BasicAuth(self._creds.username, self._creds.password or "")
        try:
            response = self._client.get(params["realm"], params=query, auth=auth)
        except httpx.HTTPError as exc:
            raise RegistryError(
                f"cannot reach the token service of {self._where()}: {exc}"
            ) from exc
        if response.status_code in (401, 403):
            raise AuthError(
                f"{response.status_code} from the token service of {self._where()}: "
                + (
                    "credentials refused"
                    if auth
                    else "credentials required (use --username/--password)"
                )
            )
        if response.status_code != 200:
            raise RegistryError(f"token service of {self._where()} answered {response.status_code}")
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise AuthError(f"the token service of {self._where()} returned no token")
        return token

    def _fail(self, response: httpx.Response, what: str) -> None:
        """Raise for an unsuccessful response (the body is read for the registry's error)."""
        detail = _error_detail(response)
        response.close()
        if response.status_code == 404:
            raise ImageNotFoundError(f"{what} not found in {self._where()}{detail}")
        raise RegistryError(f"{response.status_code} from {self._where()} for {what}{detail}")

    # -- BlobStore -------------------------------------------------------------------------

    def fetch_root(self, limits: Limits) -> Descriptor:
        """The manifest the reference names (by tag or digest), fetched and remembered."""
        reference = self._ref.digest or self._ref.tag or "latest"
        data, media_type = self._fetch_manifest(reference, limits)
        digest = self._ref.digest or sha256_digest(data)
        self._manifests[digest] = data
        return Descriptor(media_type=media_type, digest=digest, size=len(data))

    def _fetch_manifest(self, reference: str, limits: Limits) -> tuple[bytes, str]:
        what = f"manifest {reference}"
        with closing(
            self._get(f"/v2/{self._repo}/manifests/{reference}", {"Accept": ACCEPT}, stream=True)
        ) as r:
            if r.status_code != 200:
                r.read()
                self._fail(r, what)
            data = _read_limited(r, limits.max_manifest_bytes, f"{self._ref.raw}: {what}")
        if ":" in reference:
            verify_digest(data, reference, f"{self._ref.raw}: {what}")
        media_type = r.headers.get("content-type", "").split(";")[0].strip()
        return data, media_type

    def read_manifest(self, digest: str, limits: Limits) -> bytes:
        if digest in self._manifests:
            return self._manifests[digest]
        data, _ = self._fetch_manifest(digest, limits)
        self._manifests[digest] = data
        return data

    def read_blob(self, digest: str, limits: Limits) -> bytes:
        what = f"blob {digest}"
        with closing(self._get(f"/v2/{self._repo}/blobs/{digest}", {}, stream=True)) as r:
            if r.status_code != 200:
                r.read()
                self._fail(r, what)
            data = _read_limited(r, limits.max_manifest_bytes, f"{self._ref.raw}: {what}")
        verify_digest(data, digest, f"{self._ref.raw}: {what}")
        return data

    @contextmanager
    def open_blob(self, layer: LayerInfo) -> Iterator[BlobStream]:
        what = f"layer {layer.digest}"
        with closing(self._get(f"/v2/{self._repo}/blobs/{layer.digest}", {}, stream=True)) as r:
            if r.status_code != 200:
                r.read()
                self._fail(r, what)
            yield _BlobReader(r, f"{self._ref.raw}: {what}")

    def close(self) -> None:
        self._client.close()


def _read_limited(response: httpx.Response, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    try:
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise ManifestError(f"{what}: larger than the limit of {limit} bytes")
            chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise RegistryError(f"{what}: connection failed: {exc}") from exc
    return b"".join(chunks)


def _error_detail(response: httpx.Response) -> str:
    """ ": CODE message" from a distribution API error body, when there is one."""
    try:
        body: Any = response.json()
        first = body["errors"][0]
        return f": {first.get('code', '')} {first.get('message', '')}".rstrip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return ""


def open_registry(
    ref: ImageReference,
    platform: Platform,
    limits: Limits,
    creds: RegistryCredentials,
    *,
    ca_file: str | None = None,
    insecure: bool = False,
    transport: httpx.BaseTransport | None = None,
) -> BlobStoreSource:
    store = RegistryStore(ref, creds, ca_file=ca_file, insecure=insecure, transport=transport)
    base = ImageInfo(
        reference=ref.raw,
        transport=ref.transport.value,
        registry=ref.registry,
        repository=ref.repository,
        tag=ref.tag,
    )
    return BlobStoreSource(store, lambda: store.fetch_root(limits), base, platform, limits)
