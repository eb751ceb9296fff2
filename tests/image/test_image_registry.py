"""Registry pulls against real `docker-registry` servers, and the token flow over MockTransport."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import images
from tidegate.core.errors import (
    AuthError,
    DigestMismatchError,
    ImageNotFoundError,
    RegistryError,
)
from tidegate.image import SourceOptions, open_image
from tidegate.image.registry import parse_challenge

LOCAL = SourceOptions(insecure=True)


def _resolve(ref: str, options: SourceOptions | None = None) -> images.ResolvedImage:
    """Resolve and always close the source (its HTTP client or archive file)."""
    source = open_image(ref, options)
    try:
        return source.resolve()
    finally:
        source.close()


def _read(
    ref: str, options: SourceOptions = LOCAL
) -> tuple[images.ResolvedImage, dict[str, object]]:
    source = open_image(ref, options)
    try:
        image, visible, unknowns = images.read_image(source)
    finally:
        source.close()
    assert not unknowns
    return image, dict(visible)


@pytest.fixture(scope="module")
def local(busybox_layout: Path) -> images.ResolvedImage:
    source = open_image(f"oci:{busybox_layout}:{images.TAG}")
    try:
        return source.resolve()
    finally:
        source.close()


@pytest.mark.system
def test_anonymous_pull_matches_the_layout(
    registry: images.Registry, local: images.ResolvedImage
) -> None:
    image, visible = _read(f"{registry.host}/busybox:{images.TAG}")
    assert image.info.manifest_digest == local.info.manifest_digest
    assert image.info.config_digest == local.info.config_digest
    assert (image.info.registry, image.info.repository, image.info.tag) == (
        registry.host,
        "busybox",
        images.TAG,
    )
    files = {p for p, (e, _) in visible.items() if e.kind.value in ("file", "hardlink")}  # type: ignore[misc]
    assert files == images.EXPECTED_FILES


@pytest.mark.system
def test_pull_by_digest_and_docker_prefix(
    registry: images.Registry, local: images.ResolvedImage
) -> None:
    digest = local.info.manifest_digest
    image, _ = _read(f"docker://{registry.host}/busybox@{digest}")
    assert image.info.manifest_digest == digest
    assert image.info.config_digest == local.info.config_digest


@pytest.mark.system
@pytest.mark.parametrize(("platform", "arch"), [("linux/amd64", "amd64"), ("linux/arm64", "arm64")])
def test_multi_arch_index_resolved_by_platform(
    registry: images.Registry, busybox_layout: Path, platform: str, arch: str
) -> None:
    wanted = open_image(f"oci:{busybox_layout}:{images.TAG if arch == 'amd64' else 'arm64'}")
    expected = wanted.resolve().info.config_digest
    source = open_image(
        f"{registry.host}/busybox:multi", SourceOptions(platform=platform, insecure=True)
    )
    resolved = source.resolve()
    source.close()
    assert resolved.info.config_digest == expected
    assert resolved.info.platform == platform


@pytest.mark.system
@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("busybox:no-such-tag", "manifest no-such-tag not found in registry .* for repo busybox"),
        ("nothing/here:1", "not found in registry"),
        ("busybox@sha256:" + "0" * 64, "not found"),
    ],
)
def test_missing_images(registry: images.Registry, ref: str, message: str) -> None:
    with pytest.raises(ImageNotFoundError, match=message):
        _resolve(f"{registry.host}/{ref}", LOCAL)


@pytest.mark.system
def test_basic_auth(auth_registry: images.Registry, local: images.ResolvedImage) -> None:
    options = SourceOptions(
        insecure=True, username=auth_registry.username, password=auth_registry.password
    )
    image, _ = _read(f"{auth_registry.host}/private/busybox:{images.TAG}", options)
    assert image.info.config_digest == local.info.config_digest


@pytest.mark.system
@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        (
            None,
            None,
            "401 from registry 127.0.0.1:\\d+ for repo private/busybox: credentials required",
        ),
        ("tidegate", "wrong", "401 from registry .* credentials refused"),
        ("nobody", "s3cret-pass", "credentials refused"),
    ],
)
def test_auth_failures(
    auth_registry: images.Registry, username: str | None, password: str | None, message: str
) -> None:
    options = SourceOptions(insecure=True, username=username, password=password)
    with pytest.raises(AuthError, match=message):
        _resolve(f"{auth_registry.host}/private/busybox:{images.TAG}", options)


@pytest.mark.system
def test_plain_http_registry_needs_insecure(registry: images.Registry) -> None:
    with pytest.raises(RegistryError, match="cannot reach registry"):
        _resolve(f"{registry.host}/busybox:{images.TAG}")


@pytest.fixture(scope="module")
def tls_registry(
    tmp_path_factory: pytest.TempPathFactory, busybox_layout: Path
) -> Iterator[tuple[images.Registry, Path]]:
    """A registry serving https with a self-signed certificate, on 127.0.0.1 only."""
    if images.missing_tools("openssl", "docker-registry"):
        pytest.skip("openssl or docker-registry missing")
    workdir = tmp_path_factory.mktemp("tls-registry")
    cert, key = images.make_tls_cert(workdir)
    proc, reg = images.start_registry(workdir, tls=(cert, key))
    try:
        reg.push(f"oci:{busybox_layout}:{images.TAG}", f"busybox:{images.TAG}")
        yield reg, cert
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.system
def test_tls_with_ca_file_insecure_and_unverified(
    tls_registry: tuple[images.Registry, Path], local: images.ResolvedImage
) -> None:
    reg, cert = tls_registry
    ref = f"{reg.host}/busybox:{images.TAG}"
    assert _resolve(ref, SourceOptions(ca_file=str(cert))).info.config_digest == (
        local.info.config_digest
    )
    assert _resolve(ref, SourceOptions(insecure=True)).info.config_digest == (
        local.info.config_digest
    )
    with pytest.raises(RegistryError, match=r"CERTIFICATE_VERIFY_FAILED.*--ca-file"):
        _resolve(ref)


# -- token auth and hostile registries, over httpx.MockTransport --------------------------

CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + hashlib.sha256(CONFIG).hexdigest(),
            "size": len(CONFIG),
        },
        "layers": [],
    }
).encode()


class TokenRegistry:
    """A registry that wants a bearer token from its token service, like Docker Hub or Harbor."""

    def __init__(self, manifest: bytes = MANIFEST, config: bytes = CONFIG) -> None:
        self.manifest = manifest
        self.config = config
        self.token_requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            self.token_requests.append(request)
            creds = base64.b64encode(b"alice:pw").decode()
            if request.headers.get("authorization") != f"Basic {creds}":
                return httpx.Response(401)
            return httpx.Response(200, json={"access_token": "tok-123"})
        if request.url.host == "cdn.example":
            assert "authorization" not in request.headers  # never leak the token to the CDN
            return httpx.Response(200, content=self.config)
        if request.headers.get("authorization") != "Bearer tok-123":
            challenge = (
                'Bearer realm="https://auth.example/token",service="reg.example",'
                'scope="repository:team/app:pull"'
            )
            return httpx.Response(401, headers={"WWW-Authenticate": challenge})
        if request.url.path == "/v2/team/app/manifests/1.0":
            assert "application/vnd.oci.image.index.v1+json" in request.headers["accept"]
            return httpx.Response(
                200,
                content=self.manifest,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
        if request.url.path.startswith("/v2/team/app/blobs/"):
            return httpx.Response(307, headers={"Location": "https://cdn.example/blob"})
        return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "x"}]})


def test_bearer_token_flow_with_credentials_and_redirected_blobs() -> None:
    server = TokenRegistry()
    options = SourceOptions(username="alice", password="pw", transport=httpx.MockTransport(server))
    source = open_image("reg.example/team/app:1.0", options)
    image = source.resolve()
    source.close()
    assert image.info.manifest_digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
    assert image.config == json.loads(CONFIG)
    assert image.info.platform == "linux/amd64"
    token_request = server.token_requests[0]
    assert token_request.url.params["service"] == "reg.example"
    assert token_request.url.params["scope"] == "repository:team/app:pull"
    assert len(server.token_requests) == 1  # the token is reused for the blob


def test_bearer_token_refused() -> None:
    options = SourceOptions(
        username="alice", password="bad", transport=httpx.MockTransport(TokenRegistry())
    )
    with pytest.raises(AuthError, match=r"token service of registry reg\.example.*refused"):
        _resolve("reg.example/team/app:1.0", options)


def test_given_token_is_sent_as_is() -> None:
    options = SourceOptions(token="tok-123", transport=httpx.MockTransport(TokenRegistry()))
    assert _resolve("reg.example/team/app:1.0", options).layers == ()


def test_manifest_not_matching_the_requested_digest() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=MANIFEST)

    wrong = "sha256:" + "1" * 64
    options = SourceOptions(transport=httpx.MockTransport(handler))
    with pytest.raises(DigestMismatchError, match=f"not {wrong}"):
        _resolve(f"reg.example/team/app@{wrong}", options)


def test_server_errors_are_registry_errors_with_the_registry_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            500, json={"errors": [{"code": "UNKNOWN", "message": "storage backend down"}]}
        )

    options = SourceOptions(transport=httpx.MockTransport(handler))
    with pytest.raises(
        RegistryError, match=r"500 from registry reg\.example .*storage backend down"
    ):
        _resolve("reg.example/team/app:1.0", options)


def test_oversized_manifest_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{" + b" " * 10_000_000 + b"}")

    options = SourceOptions(transport=httpx.MockTransport(handler))
    with pytest.raises(Exception, match="larger than the limit"):
        _resolve("reg.example/team/app:1.0", options)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://a/token",service="reg",scope="repository:x:pull"',
            (
                "bearer",
                {"realm": "https://a/token", "service": "reg", "scope": "repository:x:pull"},
            ),
        ),
        ('Basic realm="Registry Realm"', ("basic", {"realm": "Registry Realm"})),
        (
            "Bearer realm=https://a/t,service=reg",
            ("bearer", {"realm": "https://a/t", "service": "reg"}),
        ),
    ],
)
def test_parse_challenge(header: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_challenge(header) == expected
