"""Every local transport reads the same real image (umoci + busybox, converted by skopeo)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import images
from tidegate.core.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    ManifestError,
    UsageError,
)
from tidegate.core.files import EntryKind
from tidegate.image import SourceOptions, open_image

pytestmark = pytest.mark.system


def _resolve(ref: str, options: SourceOptions | None = None) -> images.ResolvedImage:
    """Resolve and always close the source (its HTTP client or archive file)."""
    source = open_image(ref, options)
    try:
        return source.resolve()
    finally:
        source.close()


@pytest.fixture(scope="module")
def reference(busybox_layout: Path) -> images.ResolvedImage:
    """The image as its OCI layout says it is: the yardstick for the other transports."""
    source = open_image(f"oci:{busybox_layout}:{images.TAG}")
    try:
        return source.resolve()
    finally:
        source.close()


@pytest.fixture(scope="module")
def unpacked_rootfs(busybox_layout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("unpacked") / "bundle"
    images.run("umoci", "unpack", "--image", f"{busybox_layout}:{images.TAG}", bundle)
    return bundle / "rootfs"


def _refs(layout: Path, archives: dict[str, Path]) -> dict[str, str]:
    return {
        "oci": f"oci:{layout}:{images.TAG}",
        "oci-index": f"oci:{layout}:{images.MULTI_TAG}",
        "oci-archive": f"oci-archive:{archives['oci-archive']}:{images.TAG}",
        "docker-archive": f"docker-archive:{archives['docker-archive']}",
        "docker-archive-named": (
            f"docker-archive:{archives['docker-archive']}:{images.DOCKER_ARCHIVE_NAME}"
        ),
    }


@pytest.mark.parametrize(
    "kind", ["oci", "oci-index", "oci-archive", "docker-archive", "docker-archive-named"]
)
def test_every_transport_yields_the_same_image(
    kind: str,
    busybox_layout: Path,
    image_archives: dict[str, Path],
    reference: images.ResolvedImage,
) -> None:
    source = open_image(_refs(busybox_layout, image_archives)[kind])
    try:
        image, visible, unknowns = images.read_image(source)
    finally:
        source.close()
    assert image.info.config_digest == reference.info.config_digest
    assert image.info.platform == "linux/amd64"
    assert [layer.diff_id for layer in image.layers] == [r.diff_id for r in reference.layers]
    if kind.startswith("docker-archive"):
        assert image.info.manifest_digest is None  # docker save has no manifest of its own
        assert image.info.repository == "tidegate-test/busybox"
    else:
        assert image.info.manifest_digest == reference.info.manifest_digest
    assert not unknowns
    assert_busybox_content(visible)


def assert_busybox_content(visible: dict[str, tuple[images.Entry, bytes | None]]) -> None:
    """The squashed busybox image, whatever transport it came from."""
    files = {p for p, (e, _) in visible.items() if e.kind in (EntryKind.FILE, EntryKind.HARDLINK)}
    assert files == images.EXPECTED_FILES
    links = {p: e.link_target for p, (e, _) in visible.items() if e.kind is EntryKind.SYMLINK}
    assert links == images.EXPECTED_SYMLINKS
    assert not images.GONE & visible.keys()
    busybox = Path(os.path.realpath(shutil.which("busybox") or ""))
    assert visible["/bin/busybox"][1] == busybox.read_bytes()
    assert visible["/etc/passwd"][1] is not None
    assert b"app:x:1000:1000" in visible["/etc/passwd"][1]
    assert visible["/usr/bin/suid-tool"][0].is_setuid
    assert visible["/var/cache/opaque/c"][1] == b"c\n"


def test_config_facts_set_by_umoci(reference: images.ResolvedImage) -> None:
    config = reference.config["config"]
    assert config["User"] == "1000:1000"
    assert "APP_MODE=test" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.title"] == "tidegate-busybox"
    assert "8080/tcp" in config["ExposedPorts"]
    assert len(reference.layers) == 3
    assert all(layer.media_type.endswith("tar+gzip") for layer in reference.layers)


def test_rootfs_dir_matches_the_squashed_image(unpacked_rootfs: Path) -> None:
    source = open_image(f"dir:{unpacked_rootfs}")
    try:
        image, visible, unknowns = images.read_image(source)
    finally:
        source.close()
    assert image.info.transport == "dir"
    assert [(layer.digest, layer.diff_id) for layer in image.layers] == [("", "")]
    assert image.config == {}
    assert not unknowns
    # On a live filesystem a hard link is simply another regular file.
    assert visible["/bin/busybox-hl"][0].kind is EntryKind.FILE
    assert_busybox_content(visible)


def test_rootfs_never_follows_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    os.symlink(outside, root / "host")  # a directory symlink pointing outside
    os.symlink(outside / "secret", root / "etc" / "shadow")  # a file symlink pointing outside
    source = open_image(f"dir:{root}")
    try:
        _, visible, _ = images.read_image(source)
    finally:
        source.close()
    assert visible["/host"][0].kind is EntryKind.SYMLINK
    assert visible["/etc/shadow"][0].kind is EntryKind.SYMLINK
    assert visible["/etc/shadow"][1] is None
    assert not any(p.startswith("/host/") for p in visible)
    assert b"host secret" not in b"".join(c for _, c in visible.values() if c)


def test_platform_is_chosen_from_an_index(busybox_layout: Path) -> None:
    arm = _resolve(f"oci:{busybox_layout}:arm64")
    chosen = _resolve(
        f"oci:{busybox_layout}:{images.MULTI_TAG}", SourceOptions(platform="linux/arm64")
    )
    assert chosen.info.config_digest == arm.info.config_digest
    assert chosen.info.platform == "linux/arm64"
    with pytest.raises(
        ImageNotFoundError, match=r"linux/s390x \(available: linux/amd64, linux/arm64"
    ):
        _resolve(f"oci:{busybox_layout}:{images.MULTI_TAG}", SourceOptions(platform="linux/s390x"))
    with pytest.raises(UsageError, match="os/arch"):
        open_image(f"oci:{busybox_layout}", SourceOptions(platform="amd64"))


@pytest.mark.parametrize(
    ("ref", "error", "message"),
    [
        ("oci:{layout}:nope", ImageNotFoundError, "no image tagged 'nope'"),
        ("oci:{layout}", ImageNotFoundError, "holds 3 images; name one with :TAG"),
        ("oci:{tmp}/missing", ImageNotFoundError, "not an OCI image layout"),
        ("oci-archive:{tmp}/missing.tar", ImageNotFoundError, "does not exist"),
        ("docker-archive:{docker}:other/name:1", ImageNotFoundError, "no image in the archive"),
        ("docker-archive:{docker}:@3", ImageNotFoundError, "holds only 1 images"),
        ("dir:{tmp}/missing", ImageNotFoundError, "not a directory"),
    ],
)
def test_references_to_nothing(
    ref: str,
    error: type[Exception],
    message: str,
    busybox_layout: Path,
    image_archives: dict[str, Path],
    tmp_path: Path,
) -> None:
    text = ref.format(layout=busybox_layout, tmp=tmp_path, docker=image_archives["docker-archive"])
    with pytest.raises(error, match=message):
        _resolve(text)


@pytest.fixture
def layout_copy(busybox_layout: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "layout"
    shutil.copytree(busybox_layout, copy)
    return copy


def _manifest(layout: Path) -> tuple[str, dict[str, object]]:
    index = json.loads((layout / "index.json").read_text())
    digest = next(
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == images.TAG
    )
    return digest, json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())


def _retag(layout: Path, manifest_bytes: bytes) -> None:
    """Store `manifest_bytes` as a blob and point the TAG entry of index.json at it."""
    digest = hashlib.sha256(manifest_bytes).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(manifest_bytes)
    index = json.loads((layout / "index.json").read_text())
    for m in index["manifests"]:
        if m["annotations"]["org.opencontainers.image.ref.name"] == images.TAG:
            m["digest"], m["size"] = f"sha256:{digest}", len(manifest_bytes)
    (layout / "index.json").write_text(json.dumps(index))


def test_malformed_manifest_json_is_a_manifest_error(layout_copy: Path) -> None:
    _retag(layout_copy, b'{"schemaVersion": 2, "layers": [')
    with pytest.raises(ManifestError, match="not valid JSON"):
        _resolve(f"oci:{layout_copy}:{images.TAG}")


def test_manifest_layer_count_must_match_config(layout_copy: Path) -> None:
    _, manifest = _manifest(layout_copy)
    layers = manifest["layers"]
    assert isinstance(layers, list)
    manifest["layers"] = layers[:-1]
    _retag(layout_copy, json.dumps(manifest).encode())
    with pytest.raises(ManifestError, match="2 layers but config rootfs has 3 diff_ids"):
        _resolve(f"oci:{layout_copy}:{images.TAG}")


def test_blob_not_matching_its_digest(layout_copy: Path) -> None:
    """A layer file whose content is not what its digest names: DigestMismatchError."""
    source = open_image(f"oci:{layout_copy}:{images.TAG}")
    image = source.resolve()
    first, second = image.layers[0], image.layers[1]
    blobs = layout_copy / "blobs" / "sha256"
    shutil.copy(blobs / second.digest[7:], blobs / first.digest[7:])
    with pytest.raises(DigestMismatchError, match=first.digest), source.open_layer(first) as items:
        for _ in items:
            pass
    source.close()


def test_tampered_config_blob(layout_copy: Path) -> None:
    _, manifest = _manifest(layout_copy)
    config = manifest["config"]
    assert isinstance(config, dict)
    path = layout_copy / "blobs" / "sha256" / str(config["digest"])[7:]
    path.write_bytes(path.read_bytes().replace(b"1000:1000", b"0:0"))
    with pytest.raises(DigestMismatchError, match="content hashes to"):
        _resolve(f"oci:{layout_copy}:{images.TAG}")


def test_skopeo_agrees_on_the_manifest_digest(busybox_layout: Path) -> None:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci:{busybox_layout}:{images.TAG}"],
        capture_output=True,
        check=True,
    ).stdout
    resolved = _resolve(f"oci:{busybox_layout}:{images.TAG}")
    assert resolved.info.manifest_digest == "sha256:" + hashlib.sha256(out).hexdigest()
