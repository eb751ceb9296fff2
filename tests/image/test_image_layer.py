"""The streaming layer reader on hand-built tars: kinds, names, whiteouts, hostile input, limits."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import time
from dataclasses import dataclass, field

import pytest
import zstandard

from tidegate.core.errors import DigestMismatchError, LayerError
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import LayerInfo, Unknown
from tidegate.image.interface import Limits
from tidegate.image.layer import Verify, read_layer

NOISE = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(4000))
"""128 KB that does not compress: truncating its gzip cuts into the deflate stream."""
GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass
class M:
    """One member of a hand-built tar."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    link: str = ""
    mode: int = 0o644
    extra: dict[str, object] = field(default_factory=dict)


def make_tar(members: list[M], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type = m.type
            info.mode = m.mode
            info.linkname = m.link
            info.size = len(m.data) if m.type == tarfile.REGTYPE else 0
            for k, v in m.extra.items():
                setattr(info, k, v)
            tf.addfile(info, io.BytesIO(m.data) if info.size else None)
    return buf.getvalue()


def blob_layer(blob: bytes, media_type: str = GZ) -> LayerInfo:
    return LayerInfo("sha256:" + hashlib.sha256(blob).hexdigest(), "", len(blob), media_type)


def read_all(
    blob: bytes, limits: Limits | None = None, layer: LayerInfo | None = None
) -> list[tuple[Entry, bytes | None] | Unknown]:
    out: list[tuple[Entry, bytes | None] | Unknown] = []
    for item in read_layer(io.BytesIO(blob), layer or blob_layer(blob), limits or Limits()):
        if isinstance(item, Unknown):
            out.append(item)
        else:
            entry, stream = item
            out.append((entry, stream.read() if stream else None))
    return out


def entries(items: list[tuple[Entry, bytes | None] | Unknown]) -> dict[str, Entry]:
    return {i[0].path: i[0] for i in items if isinstance(i, tuple)}


def unknowns(items: list[tuple[Entry, bytes | None] | Unknown]) -> list[Unknown]:
    return [i for i in items if isinstance(i, Unknown)]


BASIC = [
    M("./", type=tarfile.DIRTYPE, mode=0o755),
    M("./etc/", type=tarfile.DIRTYPE, mode=0o755),
    M("./etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    M("bin/su", b"\x7fELF", mode=0o4755),
    M("bin/sh", type=tarfile.SYMTYPE, link="../bin/busybox"),
    M("bin/su-hl", type=tarfile.LNKTYPE, link="./bin/su"),
    M("dev/null", type=tarfile.CHRTYPE, extra={"devmajor": 1, "devminor": 3}),
    M("run/fifo", type=tarfile.FIFOTYPE),
    M("usr/" + "long/" * 40 + "name.txt", b"long"),
]


@pytest.mark.parametrize(
    "compress",
    [
        pytest.param(lambda b: gzip.compress(b), id="gzip"),
        pytest.param(lambda b: zstandard.ZstdCompressor().compress(b), id="zstd"),
        pytest.param(lambda b: b, id="uncompressed"),
    ],
)
@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=["pax", "gnu"])
def test_entries_of_every_kind(compress: object, fmt: int) -> None:
    blob = compress(make_tar(BASIC, fmt))  # type: ignore[operator]
    items = read_all(blob)
    got = entries(items)
    assert not unknowns(items)
    assert got["/"].kind is EntryKind.DIR
    assert got["/etc/passwd"] == Entry(
        "/etc/passwd", EntryKind.FILE, mode=0o644, size=26, uid=0, gid=0, mtime=0
    )
    assert got["/bin/su"].is_setuid
    assert got["/bin/su"].is_executable
    assert got["/bin/sh"].link_target == "../bin/busybox"  # symlink targets stay raw
    assert got["/bin/su-hl"].kind is EntryKind.HARDLINK
    assert got["/bin/su-hl"].link_target == "/bin/su"  # hard link targets are normalised
    assert got["/dev/null"].kind is EntryKind.OTHER
    assert got["/run/fifo"].kind is EntryKind.OTHER
    long_path = "/usr/" + "long/" * 40 + "name.txt"
    assert got[long_path].size == 4
    contents = {i[0].path: i[1] for i in items if isinstance(i, tuple)}
    assert contents[long_path] == b"long"
    assert contents["/etc/passwd"] == b"root:x:0:0::/root:/bin/sh\n"


def test_whiteouts_and_opaque_markers() -> None:
    blob = gzip.compress(
        make_tar(
            [
                M("etc/.wh.removed"),
                M("var/cache/.wh..wh..opq"),
                M(".wh.top"),
                M("x/.wh..wh.plnk"),  # aufs bookkeeping: ignored
                M("y/.wh.."),
            ]
        )
    )
    items = read_all(blob)
    got = [(i[0].path, i[0].kind) for i in items if isinstance(i, tuple)]
    assert got == [
        ("/etc/removed", EntryKind.WHITEOUT),
        ("/var/cache", EntryKind.OPAQUE),
        ("/top", EntryKind.WHITEOUT),
    ]
    assert [u.reason for u in unknowns(items)] == ["malformed whiteout name; skipped"]


@pytest.mark.parametrize(
    ("member", "where", "reason"),
    [
        (M("../../etc/passwd", b"x"), "../../etc/passwd", "escapes the image root"),
        (M("a/../../b", b"x"), "a/../../b", "escapes the image root"),
        (M("bad", type=tarfile.LNKTYPE, link="etc/shadow"), "/bad", "hard link to missing target"),
        (M("bad", type=tarfile.LNKTYPE, link="../../x"), "/bad", "hard link to missing target"),
        (M(".", b"file over root"), ".", "replaces the image root"),
    ],
)
def test_hostile_members_become_unknowns(member: M, where: str, reason: str) -> None:
    blob = gzip.compress(make_tar([member, M("ok", b"fine")]))
    items = read_all(blob)
    assert [u.where for u in unknowns(items)] == [where]
    assert reason in unknowns(items)[0].reason
    # the stream goes on after the hostile member, and the hostile one yields no entry
    assert list(entries(items)) == ["/ok"]


def test_absolute_names_are_rebased_and_escaping_symlinks_kept_raw() -> None:
    blob = gzip.compress(
        make_tar([M("/etc/abs", b"x"), M("link", type=tarfile.SYMTYPE, link="../../../etc/shadow")])
    )
    got = entries(read_all(blob))
    assert got["/etc/abs"].kind is EntryKind.FILE
    assert got["/link"].link_target == "../../../etc/shadow"


def test_content_can_be_read_in_chunks_or_skipped() -> None:
    big = bytes(range(256)) * 12_000  # ~3 MiB, spans several reader chunks
    blob = gzip.compress(make_tar([M("big", big), M("skipped", big), M("after", b"tail")]))
    seen: dict[str, bytes] = {}
    for item in read_layer(io.BytesIO(blob), blob_layer(blob), Limits()):
        assert not isinstance(item, Unknown)
        entry, stream = item
        assert stream is not None
        if entry.path == "/skipped":
            assert stream.read(10) == big[:10]  # read a little, leave the rest unread
            continue
        chunks = []
        while chunk := stream.read(1024 * 1024):
            assert len(chunk) <= 1024 * 1024
            chunks.append(chunk)
        seen[entry.path] = b"".join(chunks)
    assert seen == {"/big": big, "/after": b"tail"}


def test_digest_mismatch_raises_at_end_of_stream() -> None:
    blob = gzip.compress(make_tar([M("f", b"x")]))
    wrong = LayerInfo("sha256:" + "0" * 64, "", len(blob), GZ)
    it = read_layer(io.BytesIO(blob), wrong, Limits())
    assert isinstance(next(it), tuple)  # entries come first ...
    with pytest.raises(DigestMismatchError, match="sha256:0000"):
        next(it)  # ... the mismatch is raised when the stream ends


def test_diff_id_verification_hashes_the_uncompressed_tar() -> None:
    tar = make_tar([M("f", b"x")])
    blob = gzip.compress(tar)
    good = LayerInfo("", "sha256:" + hashlib.sha256(tar).hexdigest(), len(blob), "")
    assert len(list(read_layer(io.BytesIO(blob), good, Limits(), verify=Verify.DIFF_ID))) == 1
    bad = LayerInfo("", "sha256:" + hashlib.sha256(blob).hexdigest(), len(blob), "")
    with pytest.raises(DigestMismatchError, match="diff_id"):
        list(read_layer(io.BytesIO(blob), bad, Limits(), verify=Verify.DIFF_ID))


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (gzip.compress(make_tar([M("f", NOISE)]))[:-2000], "corrupt or truncated gzip"),
        (gzip.compress(make_tar([M("f", NOISE)]))[:-4], "corrupt or truncated gzip"),
        (b"", "empty"),
        (make_tar([M("f", b"x" * 100_000)])[:5000], "truncated tar"),
        (b"\x1f\x8b\x08\x00" + b"garbage" * 100, "corrupt or truncated gzip"),
        (b"this is not a tar archive at all".ljust(1024, b"!"), "not a tar archive"),
    ],
    ids=[
        "truncated-gzip",
        "truncated-gzip-trailer",
        "empty",
        "truncated-tar",
        "corrupt-gzip",
        "not-a-tar",
    ],
)
def test_broken_layers_raise_layer_error_naming_the_layer(blob: bytes, message: str) -> None:
    layer = blob_layer(blob)
    with pytest.raises(LayerError, match=message) as info:
        read_all(blob, layer=layer)
    assert layer.digest in str(info.value)


class _Zeros:
    """`size` zero bytes as a file, without holding them in memory."""

    def __init__(self, size: int) -> None:
        self._left = size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        self._left -= n
        return bytes(n)


def _bomb(size: int) -> bytes:
    """A gzipped tar of one file of `size` zero bytes: compresses ~1000:1, built in streaming."""
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tf,
    ):
        info = tarfile.TarInfo("zeros")
        info.size = size
        tf.addfile(info, _Zeros(size))
    return out.getvalue()


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(max_ratio=50, ratio_grace_bytes=1024 * 1024), "decompression bomb"),
        (Limits(max_layer_bytes=10 * 1024 * 1024), "expands beyond the limit"),
    ],
)
def test_bomb_is_stopped_by_limits_without_hanging(limits: Limits, message: str) -> None:
    blob = _bomb(50 * 1024 * 1024)
    assert len(blob) < 100_000
    start = time.monotonic()
    with pytest.raises(LayerError, match=message):
        read_all(blob, limits)
    assert time.monotonic() - start < 10


def test_default_limits_catch_a_real_bomb_ratio() -> None:
    """The default ratio limit (1000 after 256 MiB of grace) stops a zero-filled bomb."""
    blob = _bomb(300 * 1024 * 1024)
    assert len(blob) * Limits().max_ratio < 300 * 1024 * 1024
    with pytest.raises(LayerError, match="decompression bomb"):
        read_all(blob)


def test_entry_count_limit() -> None:
    blob = gzip.compress(make_tar([M(f"f{i}") for i in range(20)]))
    with pytest.raises(LayerError, match="more than 10 entries"):
        read_all(blob, Limits(max_entries=10))


def test_hard_link_to_a_directory_or_later_member_is_unknown() -> None:
    blob = gzip.compress(
        make_tar(
            [
                M("d", type=tarfile.DIRTYPE),
                M("to-dir", type=tarfile.LNKTYPE, link="d"),
                M("early", type=tarfile.LNKTYPE, link="late"),
                M("late", b"x"),
            ]
        )
    )
    items = read_all(blob)
    assert [u.where for u in unknowns(items)] == ["/to-dir", "/early"]
    assert sorted(entries(items)) == ["/d", "/late"]
