"""Reference parsing: skopeo transports and docker's naming rules."""

from __future__ import annotations

import pytest

import tidegate.image
from tidegate.core.errors import ReferenceError_
from tidegate.image.reference import ImageReference, Transport, parse_reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("oci:/tmp/lay", {"transport": Transport.OCI, "path": "/tmp/lay", "tag": None}),
        ("oci:./lay:1.0", {"transport": Transport.OCI, "path": "./lay", "tag": "1.0"}),
        (
            "oci-archive:a.tar:v2",
            {"transport": Transport.OCI_ARCHIVE, "path": "a.tar", "tag": "v2"},
        ),
        ("docker-archive:d.tar", {"transport": Transport.DOCKER_ARCHIVE, "path": "d.tar"}),
        (
            "docker-archive:d.tar:foo/bar:1",
            {"path": "d.tar", "registry": "docker.io", "repository": "foo/bar", "tag": "1"},
        ),
        ("docker-archive:d.tar:@1", {"path": "d.tar", "index": 1}),
        ("dir:/srv/rootfs", {"transport": Transport.DIR, "path": "/srv/rootfs"}),
        ("dir:/a:b", {"transport": Transport.DIR, "path": "/a:b"}),
        (
            "busybox",
            {
                "registry": "docker.io",
                "repository": "library/busybox",
                "tag": "latest",
                "digest": None,
            },
        ),
        ("busybox:1.36", {"registry": "docker.io", "repository": "library/busybox", "tag": "1.36"}),
        ("foo/bar", {"registry": "docker.io", "repository": "foo/bar", "tag": "latest"}),
        ("index.docker.io/foo/bar", {"registry": "docker.io", "repository": "foo/bar"}),
        ("localhost/x", {"registry": "localhost", "repository": "x"}),
        (
            "127.0.0.1:5000/team/app:v1",
            {"registry": "127.0.0.1:5000", "repository": "team/app", "tag": "v1"},
        ),
        (
            "docker://ghcr.io/org/img@" + D,
            {"transport": Transport.DOCKER, "registry": "ghcr.io", "tag": None, "digest": D},
        ),
        (
            f"quay.io/a/b:t@{D}",
            {"registry": "quay.io", "repository": "a/b", "tag": "t", "digest": D},
        ),
        ("Registry/app", {"registry": "Registry", "repository": "app"}),
    ],
)
def test_parse(raw: str, expected: dict[str, object]) -> None:
    ref = parse_reference(raw)
    assert ref.raw == raw
    for key, value in expected.items():
        assert getattr(ref, key) == value, key


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        (" busybox", "spaces"),
        ("oci:", "needs a path"),
        ("oci:dir:", "empty tag"),
        ("dir:", "needs a path"),
        ("docker:busybox", "docker://"),
        ("Busybox", "must be lowercase"),
        ("busybox@sha256:1234", "digest"),
        ("host.io/app:bad tag", "invalid tag"),
        ("host.io/app:-x", "invalid tag"),
        ("docker-archive:d.tar:@x", "@N"),
        ("docker-archive:d.tar:a/b@" + D, "takes a tag"),
        ("a..b.io:99999999/x", "invalid registry host"),
    ],
)
def test_bad_references_name_the_input(raw: str, message: str) -> None:
    with pytest.raises(ReferenceError_, match=message) as info:
        parse_reference(raw)
    assert repr(raw) in str(info.value)


def test_canonical_name_and_docker_hub_api_host() -> None:
    ref = parse_reference("busybox:1")
    assert ref.name == "docker.io/library/busybox:1"
    assert ref.api_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/x").api_host == "127.0.0.1:5000"
    assert isinstance(ref, ImageReference)


def test_public_api_is_guarded() -> None:
    assert sorted(tidegate.image.__all__) == [
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
    for name in tidegate.image.__all__:
        assert hasattr(tidegate.image, name)
