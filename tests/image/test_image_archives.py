"""Hostile and odd archives built by hand: docker-archive and oci-archive edge cases."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest

from tidegate.core.errors import (
    DigestMismatchError,
    ImageError,
    ImageNotFoundError,
    ManifestError,
)
from tidegate.core.files import EntryKind
from tidegate.image import SourceOptions, open_image
from tidegate.image.interface import Limits


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _docker_archive(
    path: Path, layer: bytes, *, diff_id: str | None = None, **extra: object
) -> Path:
    diff = diff_id or "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}
    ).encode()
    entry = {"Config": "config.json", "RepoTags": ["example.io/app:2"], "Layers": ["l1/layer.tar"]}
    entry.update(extra)
    path.write_bytes(
        _tar(
            {
                "manifest.json": json.dumps([entry]).encode(),
                "config.json": config,
                "l1/layer.tar": layer,
            }
        )
    )
    return path


LAYER = _tar({"etc/hello": b"hi\n", "bin/tool": b"\x7fELF"})


def test_docker_archive_with_uncompressed_layers(tmp_path: Path) -> None:
    archive = _docker_archive(tmp_path / "d.tar", LAYER)
    source = open_image(f"docker-archive:{archive}:example.io/app:2")
    image = source.resolve()
    assert (image.info.registry, image.info.repository, image.info.tag) == (
        "example.io",
        "app",
        "2",
    )
    assert image.layers[0].diff_id == "sha256:" + hashlib.sha256(LAYER).hexdigest()
    with source.open_layer(image.layers[0]) as items:
        got = {i[0].path: i[0].kind for i in items if isinstance(i, tuple)}
    source.close()
    assert got == {"/etc/hello": EntryKind.FILE, "/bin/tool": EntryKind.FILE}


def test_docker_archive_layer_not_matching_its_diff_id(tmp_path: Path) -> None:
    archive = _docker_archive(tmp_path / "d.tar", LAYER, diff_id="sha256:" + "2" * 64)
    source = open_image(f"docker-archive:{archive}")
    image = source.resolve()
    with (
        pytest.raises(DigestMismatchError, match="diff_id"),
        source.open_layer(image.layers[0]) as items,
    ):
        list(items)
    source.close()


@pytest.mark.parametrize(
    ("extra", "error", "message"),
    [
        ({"Layers": ["../../etc/passwd"]}, ManifestError, "invalid member"),
        ({"Layers": ["nowhere/layer.tar"]}, ImageNotFoundError, "missing from the archive"),
        ({"Layers": []}, ManifestError, "0 layers but the config has 1"),
        ({"Config": 7}, ManifestError, "without Config and Layers"),
    ],
)
def test_hostile_docker_archive_manifests(
    tmp_path: Path, extra: dict[str, object], error: type[Exception], message: str
) -> None:
    archive = _docker_archive(tmp_path / "d.tar", LAYER, **extra)
    source = open_image(f"docker-archive:{archive}")
    with pytest.raises(error, match=message):
        source.resolve()
    source.close()


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"definitely not a tar" * 100, ImageError, "not a readable tar archive"),
        (_tar({"manifest.json": b"[{"}), ManifestError, "not valid JSON"),
        (_tar({"manifest.json": b'{"a": 1}'}), ManifestError, "not a list of images"),
        (_tar({"other": b""}), ImageNotFoundError, "archive has no manifest.json"),
    ],
)
def test_broken_docker_archives(
    tmp_path: Path, content: bytes, error: type[Exception], message: str
) -> None:
    path = tmp_path / "bad.tar"
    path.write_bytes(content)
    with pytest.raises(error, match=message):
        _resolve(f"docker-archive:{path}")


def _resolve(ref: str) -> None:
    source = open_image(ref)
    try:
        source.resolve()
    finally:
        source.close()


def test_oci_archive_without_layout(tmp_path: Path) -> None:
    path = tmp_path / "o.tar"
    path.write_bytes(_tar({"index.json": b"{}"}))
    with pytest.raises(ImageNotFoundError, match="not an OCI layout"):
        open_image(f"oci-archive:{path}")


def test_manifest_size_limit(tmp_path: Path) -> None:
    archive = _docker_archive(tmp_path / "d.tar", LAYER)
    source = open_image(
        f"docker-archive:{archive}", SourceOptions(limits=Limits(max_manifest_bytes=10))
    )
    with pytest.raises(ManifestError, match="larger than 10 bytes"):
        source.resolve()
    source.close()


def test_abandoning_a_layer_early_releases_the_decompressor(tmp_path: Path) -> None:
    """Leaving a gzip layer half read must stop its worker thread (no leak, no hang)."""
    layer = gzip.compress(_tar({f"f{i}": b"x" * 1000 for i in range(2000)}))
    layout = tmp_path / "layout"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    diff = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _put(blobs, config, "application/vnd.oci.image.config.v1+json"),
            "layers": [_put(blobs, layer, "application/vnd.oci.image.layer.v1.tar+gzip")],
        }
    ).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [_put(blobs, manifest, "application/vnd.oci.image.manifest.v1+json")],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    before = threading.active_count()
    source = open_image(f"oci:{layout}")
    image = source.resolve()
    for _ in range(5):
        with source.open_layer(image.layers[0]) as items:
            next(iter(items))
    source.close()
    assert threading.active_count() <= before


def _put(blobs: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}
