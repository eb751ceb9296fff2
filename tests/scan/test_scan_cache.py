"""The layer cache inside the real pipeline: hits open no layer, keys follow analyzer versions,
shared base layers are reused across images, damaged entries are misses, and a layer whose blob
does not match its digest is never cached."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from helpers import images
from tidegate.analyzers import default_analyzers
from tidegate.analyzers.interface import Analyzer, FileConsumer
from tidegate.cli.exit_codes import ExitCode
from tidegate.cli.main import main
from tidegate.core.errors import DigestMismatchError
from tidegate.core.files import Entry
from tidegate.core.models import LayerInfo, ScanResult
from tidegate.image import ImageSource, LayerItem, ResolvedImage, open_image
from tidegate.scan import LayerCache, scan_image
from tidegate.scan.cache import cache_key

pytestmark = pytest.mark.system

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)


class CountingSource:
    """An ImageSource that records which layers were opened (the real source does the work)."""

    def __init__(self, inner: ImageSource) -> None:
        self.inner = inner
        self.opened: list[str] = []

    def resolve(self) -> ResolvedImage:
        return self.inner.resolve()

    def open_layer(self, layer: LayerInfo) -> AbstractContextManager[Iterator[LayerItem]]:
        self.opened.append(layer.digest)
        return self.inner.open_layer(layer)

    def close(self) -> None:
        self.inner.close()


class Bumped:
    """A real analyzer under a new version: what a release changing that analyzer looks like."""

    def __init__(self, inner: Analyzer) -> None:
        self.inner = inner
        self.name = inner.name
        self.version = inner.version + 1

    def wants(self, entry: Entry) -> bool:
        return self.inner.wants(entry)

    def begin(self, entry: Entry, layer: str | None) -> FileConsumer:
        return self.inner.begin(entry, layer)


def scan_counting(
    ref: str,
    cache: LayerCache | None,
    *,
    analyzers: Sequence[Analyzer] | None = None,
    at: datetime = T1,
) -> tuple[ScanResult, list[str]]:
    source = CountingSource(open_image(ref))
    try:
        result = scan_image(source, cache=cache, analyzers=analyzers, clock=lambda: at)
    finally:
        source.close()
    return result, source.opened


@pytest.fixture
def ref(busybox_layout: Path) -> str:
    return f"oci:{busybox_layout}:{images.TAG}"


def entries(root: Path) -> set[Path]:
    return set(root.rglob("*.json.zst"))


def test_second_scan_opens_no_layer_and_gives_the_same_result(ref: str, tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    cold, opened_cold = scan_counting(ref, cache, at=T1)
    assert len(opened_cold) == 3
    assert len(entries(tmp_path / "cache")) == 3
    warm, opened_warm = scan_counting(ref, cache, at=T2)
    assert opened_warm == []
    assert warm.scanned_at == T2
    assert replace(warm, scanned_at=T1) == cold
    uncached, _ = scan_counting(ref, None, at=T1)
    assert uncached == cold


def test_a_changed_analyzer_version_misses_the_cache(ref: str, tmp_path: Path) -> None:
    cache = LayerCache(tmp_path / "cache")
    plain, _ = scan_counting(ref, cache)
    analyzers = default_analyzers()
    bumped: list[Analyzer] = [Bumped(a) if a.name == "executables" else a for a in analyzers]
    result, opened = scan_counting(ref, cache, analyzers=bumped)
    assert len(opened) == 3
    assert len(entries(tmp_path / "cache")) == 6
    assert dict(result.analyzers)["executables"] == dict(plain.analyzers)["executables"] + 1
    assert result.catalogue == plain.catalogue
    # The old version's entries are still there and still used by the old analyzers.
    _, opened_again = scan_counting(ref, cache)
    assert opened_again == []


@pytest.fixture
def layout_copy(busybox_layout: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "layout"
    shutil.copytree(busybox_layout, copy)
    return copy


def _add_layer(layout: Path, tag: str, files: dict[str, bytes], work: Path) -> None:
    """A new image `tag`: the busybox image plus one layer on top (sharing its three layers)."""
    layer = work / "extra.tar"
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tf.addfile(info, io.BytesIO(data))
    images.run(
        "umoci", "raw", "add-layer", "--image", f"{layout}:{images.TAG}", "--tag", tag, layer
    )


def test_an_image_sharing_base_layers_reuses_their_entries(
    layout_copy: Path, tmp_path: Path
) -> None:
    _add_layer(layout_copy, "2.0", {"usr/local/bin/tool": b"#!/bin/sh\necho tool\n"}, tmp_path)
    cache = LayerCache(tmp_path / "cache")
    base, _ = scan_counting(f"oci:{layout_copy}:{images.TAG}", cache)
    derived, opened = scan_counting(f"oci:{layout_copy}:2.0", cache)
    derived_layers = derived.image.layers
    assert len(derived_layers) == 4
    assert [layer.digest for layer in derived_layers[:3]] == [
        layer.digest for layer in base.image.layers
    ]
    assert opened == [derived_layers[3].digest]
    paths = {e.path for e in derived.catalogue.executables}
    assert paths == {e.path for e in base.catalogue.executables} | {"/usr/local/bin/tool"}
    uncached, _ = scan_counting(f"oci:{layout_copy}:2.0", None)
    assert uncached.catalogue == derived.catalogue


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"not zstd at all", id="garbage"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(
            lambda data: zstandard.ZstdCompressor().compress(b'{"digest": 1}'),
            id="wrong-shape",
        ),
    ],
)
def test_a_damaged_entry_is_a_miss_not_a_crash(
    ref: str, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    cache = LayerCache(tmp_path / "cache")
    cold, _ = scan_counting(ref, cache)
    for path in entries(tmp_path / "cache"):
        path.write_bytes(damage(path.read_bytes()))
    again, opened = scan_counting(ref, cache)
    assert len(opened) == 3
    assert again == cold
    # The misses were re-analysed and stored again: a third scan reads nothing.
    _, opened_third = scan_counting(ref, cache)
    assert opened_third == []


def _tamper_top_layer(layout: Path) -> tuple[str, list[str]]:
    """Put the first layer's bytes in the top layer's blob: a valid layer, the wrong digest."""
    source = open_image(f"oci:{layout}:{images.TAG}")
    try:
        image = source.resolve()
    finally:
        source.close()
    digests = [layer.digest for layer in image.layers]
    blobs = layout / "blobs" / "sha256"
    shutil.copy(blobs / digests[0][7:], blobs / digests[2][7:])
    return digests[2], digests[:2]


def test_a_layer_not_matching_its_digest_is_never_cached(layout_copy: Path, tmp_path: Path) -> None:
    bad, good = _tamper_top_layer(layout_copy)
    cache = LayerCache(tmp_path / "cache")
    ref = f"oci:{layout_copy}:{images.TAG}"
    with pytest.raises(DigestMismatchError, match=bad):
        scan_counting(ref, cache)
    keys = {cache_key(d, default_analyzers()) for d in (*good, bad)}
    stored = {p.name.removesuffix(".json.zst") for p in entries(tmp_path / "cache")}
    assert stored == keys - {cache_key(bad, default_analyzers())}
    # And the failure repeats: nothing stored lets a second scan pass over the bad layer.
    with pytest.raises(DigestMismatchError, match=bad):
        scan_counting(ref, cache)


def test_cli_tampered_layer_with_a_cache_exits_3(layout_copy: Path, tmp_path: Path) -> None:
    bad, _ = _tamper_top_layer(layout_copy)
    out, err = io.StringIO(), io.StringIO()
    argv = ["scan", f"oci:{layout_copy}:{images.TAG}", "--skip-db", "-q"]
    code = main([*argv, "--cache-dir", str(tmp_path / "cache")], out, err)
    assert code == ExitCode.IMAGE_ERROR
    assert bad in err.getvalue()
    assert out.getvalue() == ""
    assert len(entries(tmp_path / "cache")) == 2


def test_cli_cache_dir_from_the_environment(
    ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIDEGATE_CACHE_DIR", str(tmp_path / "env-cache"))
    out = io.StringIO()
    assert main(["scan", ref, "--skip-db", "-q", "-f", "json"], out, io.StringIO()) == 0
    assert len(entries(tmp_path / "env-cache")) == 3
