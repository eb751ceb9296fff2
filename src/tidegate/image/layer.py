"""The one streaming layer reader every source shares: blob bytes in, `LayerItem`s out.

It owns decompression (gzip through ISA-L, zstd, plain tar; chosen by media type and magic
bytes), digest verification of the blob as it streams, a tar header parser (ustar, GNU long
names, PAX), the translation of tar members to `Entry` values (whiteouts, opaque directories,
hostile paths and links as `Unknown`s) and the safety limits (layer size, bomb ratio, entry
count). Nothing is written to disk and memory stays bounded by one read chunk plus what the
caller keeps.

The tar parser is our own rather than `tarfile` in stream mode: it is faster per member, lets
content be skipped without Python-level copies, and makes every malformed header a `LayerError`
that names the layer instead of a `tarfile` internal error.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from typing import IO, Protocol, assert_never, cast

from tidegate.core.errors import DigestMismatchError, LayerError, TidegateError
from tidegate.core.files import Entry, EntryKind, normalize_path
from tidegate.core.models import LayerInfo, Unknown
from tidegate.image.interface import LayerItem, Limits

CHUNK = 1024 * 1024
"""Bytes pulled from the decompressor at a time; bounds the reader's own memory."""
_BLOCK = 512
_MAX_META_BYTES = 1024 * 1024
"""Largest PAX header or GNU long name accepted: real ones are a few hundred bytes."""

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class BlobStream(Protocol):
    """The raw bytes of a blob: anything with `read(n)`, returning b"" at the end."""

    def read(self, size: int = -1, /) -> bytes: ...


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


class Verify(StrEnum):
    """Which bytes the expected digest is computed over."""

    BLOB = "blob"
    """The bytes as stored (OCI and registry blobs: the compressed layer)."""
    DIFF_ID = "diff_id"
    """The uncompressed tar (docker-archive, whose layer files are named by their diff_id)."""
    NONE = "none"


def sniff_compression(head: bytes) -> Compression:
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def new_hasher(digest: str, what: str) -> tuple[hashlib._Hash, str]:
    """A hasher for "algo:hex" and the expected hex; LayerError for an unsupported algorithm."""
    algo, sep, hexpart = digest.partition(":")
    if not sep or algo not in ("sha256", "sha512") or not hexpart:
        raise LayerError(f"{what}: unsupported or malformed digest {digest!r}")
    return hashlib.new(algo), hexpart.lower()


class _HashingReader(io.RawIOBase):
    """Counts and hashes the raw blob bytes as the decompressor pulls them."""

    def __init__(self, source: BlobStream, hasher: hashlib._Hash | None, head: bytes) -> None:
        self._source = source
        self._hasher = hasher
        self._pending = head
        self.count = 0
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.pull(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def pull(self, size: int) -> bytes:
        if self._pending:
            data, self._pending = self._pending[:size], self._pending[size:]
            return data
        data = self._source.read(size)
        if not data:
            self.eof = True
            return b""
        self.count += len(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return data


def _read_head(source: BlobStream, hasher: hashlib._Hash | None, n: int) -> tuple[bytes, int]:
    """The first bytes of a blob (hashed and counted), to sniff its compression."""
    head = b""
    while len(head) < n:
        data = source.read(n - len(head))
        if not data:
            break
        head += data
    if hasher is not None:
        hasher.update(head)
    return head, len(head)


def _open_decompressor(
    compression: Compression, raw: _HashingReader, stack: ExitStack
) -> Callable[[int], bytes]:
    """A `read(n)` over the decompressed bytes."""
    match compression:
        case Compression.GZIP:
            return _open_gzip(raw, stack)
        case Compression.ZSTD:
            import zstandard

            zs = stack.enter_context(
                zstandard.ZstdDecompressor().stream_reader(
                    cast("IO[bytes]", raw), read_across_frames=True
                )
            )
            zread: Callable[[int], bytes] = zs.read
            return zread
        case Compression.NONE:
            return raw.pull
    assert_never(compression)


def _open_gzip(raw: _HashingReader, stack: ExitStack) -> Callable[[int], bytes]:
    try:
        from isal import igzip_threaded
    except ImportError:  # pragma: no cover - isal ships wheels for every supported platform
        gz: io.BufferedIOBase = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        return gz.read
    # The threaded reader inflates in a worker thread (ISA-L releases the GIL), so
    # decompression overlaps with tar parsing and the analyzers; ISA-L is ~3x zlib.
    opened = igzip_threaded.open(raw, "rb", threads=1, block_size=CHUNK)  # type: ignore[no-untyped-call]
    tgz = stack.enter_context(opened)
    read: Callable[[int], bytes] = tgz.read
    return read


@dataclass(slots=True)
class _Meter:
    """Limits on what one layer may expand to, checked on every chunk."""

    limits: Limits
    raw: _HashingReader
    name: str
    total: int = 0

    def add(self, n: int) -> None:
        self.total += n
        lim = self.limits
        if self.total > lim.max_layer_bytes:
            raise LayerError(
                f"layer {self.name}: expands beyond the limit of {lim.max_layer_bytes} bytes"
            )
        if (
            self.total > lim.ratio_grace_bytes
            and self.raw.count > 0
            and self.total > lim.max_ratio * self.raw.count
        ):
            raise LayerError(
                f"layer {self.name}: decompression bomb: {self.total} bytes from "
                f"{self.raw.count} compressed bytes exceeds the ratio limit of {lim.max_ratio}"
            )


class _Tape:
    """Buffered reading of the decompressed tar, with limits and decompression errors mapped."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        meter: _Meter,
        diff_hasher: hashlib._Hash | None,
        compression: Compression,
    ) -> None:
        self._read = read
        self._meter = meter
        self._diff = diff_hasher
        self._compression = compression
        self._buf = b""
        self._pos = 0
        self.offset = 0
        """Offset in the uncompressed tar of the next unread byte."""

    def _refill(self) -> bool:
        try:
            data = self._read(CHUNK)
        except TidegateError:
            raise
        except Exception as exc:  # zlib/isal/zstd/OS errors all mean the same to the user
            raise LayerError(
                f"layer {self._meter.name}: corrupt or truncated {self._compression} stream "
                f"at uncompressed offset {self._meter.total}: {exc}"
            ) from exc
        if not data:
            return False
        self._meter.add(len(data))
        if self._diff is not None:
            self._diff.update(data)
        self._buf = data
        self._pos = 0
        return True

    def read_upto(self, n: int) -> bytes:
        """Up to `n` bytes (fewer only at the end of the stream)."""
        pieces: list[bytes] = []
        want = n
        while want > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._refill():
                    break
                avail = len(self._buf)
            take = min(avail, want)
            if take == len(self._buf) and self._pos == 0:
                pieces.append(self._buf)
            else:
                pieces.append(self._buf[self._pos : self._pos + take])
            self._pos += take
            want -= take
        got = n - want
        self.offset += got
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def take(self, n: int, what: str) -> bytes:
        data = self.read_upto(n)
        if len(data) != n:
            raise LayerError(
                f"layer {self._meter.name}: truncated tar: {what} ends at offset {self.offset}"
            )
        return data

    def skip(self, n: int) -> None:
        while n > 0:
            avail = len(self._buf) - self._pos
            if avail == 0:
                if not self._refill():
                    raise LayerError(
                        f"layer {self._meter.name}: truncated tar: member content ends at "
                        f"offset {self.offset}"
                    )
                avail = len(self._buf)
            take = min(avail, n)
            self._pos += take
            self.offset += take
            n -= take

    def drain(self) -> None:
        """Read to the end of the stream so the whole blob is hashed and its trailer checked."""
        self._pos = len(self._buf)
        while self._refill():
            self._pos = len(self._buf)


class _Content:
    """The content stream of one FILE member; reads only within the member."""

    __slots__ = ("_remaining", "_tape")

    def __init__(self, tape: _Tape, size: int) -> None:
        self._tape = tape
        self._remaining = size

    def read(self, size: int = -1, /) -> bytes:
        if self._remaining <= 0:
            return b""
        n = self._remaining if size < 0 or size > self._remaining else size
        data = self._tape.read_upto(n)
        if len(data) != n:
            raise LayerError(
                f"layer {self._tape._meter.name}: truncated tar: file content ends at "
                f"offset {self._tape.offset}"
            )
        self._remaining -= n
        return data

    def finish(self) -> None:
        """Skip what the caller left unread; the content stream is invalid afterwards."""
        if self._remaining > 0:
            self._tape.skip(self._remaining)
        self._remaining = 0


def read_layer(
    source: BlobStream,
    layer: LayerInfo,
    limits: Limits,
    *,
    verify: Verify = Verify.BLOB,
) -> Generator[LayerItem, None, None]:
    """Stream the entries of one layer blob; raise at the end when its digest does not match.

    `layer.digest` is checked against the raw bytes (`Verify.BLOB`), or `layer.diff_id` against
    the uncompressed tar (`Verify.DIFF_ID`). Compression is detected from the blob's magic
    bytes. The caller closes `source`.
    """
    name = layer.digest or layer.diff_id or "(unnamed layer)"
    blob_hasher, blob_hex = (None, "")
    diff_hasher, diff_hex = (None, "")
    if verify is Verify.BLOB:
        blob_hasher, blob_hex = new_hasher(layer.digest, f"layer {name}")
    elif verify is Verify.DIFF_ID:
        diff_hasher, diff_hex = new_hasher(layer.diff_id, f"layer {name}")
    head, _ = _read_head(source, blob_hasher, 4)
    if not head:
        raise LayerError(f"layer {name}: empty blob (a layer is at least a tar end marker)")
    # Media types lie (docker-archive labels gzipped layers as plain tar, some tools label plain
    # tars as gzip), and a tar can never start with these magic bytes: trust the bytes.
    compression = sniff_compression(head)
    raw = _HashingReader(source, blob_hasher, head)
    raw.count = len(head)
    with ExitStack() as stack:
        read = _open_decompressor(compression, raw, stack)
        tape = _Tape(read, _Meter(limits, raw, name), diff_hasher, compression)
        yield from _TarWalker(tape, layer, limits).walk()
        tape.drain()
    while raw.pull(CHUNK):
        pass
    _check_digest(blob_hasher, blob_hex, name, "blob")
    _check_digest(diff_hasher, diff_hex, name, "uncompressed tar (diff_id)")


def _check_digest(hasher: hashlib._Hash | None, expected: str, name: str, what: str) -> None:
    if hasher is not None and hasher.hexdigest() != expected:
        raise DigestMismatchError(
            f"layer {name}: {what} content hashes to {hasher.name}:{hasher.hexdigest()}, "
            f"not the digest that names it"
        )


@dataclass(slots=True)
class _Header:
    name: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime: int
    type: bytes
    linkname: str


def _num(field: bytes, what: str, layer: str) -> int:
    """A tar numeric field: octal text, or base-256 when the high bit is set (GNU)."""
    if field and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:  # negative base-256 (only ever seen in mtime)
            value -= 1 << (8 * (len(field) - 1))
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        msg = f"layer {layer}: malformed tar header: bad {what} field {text!r}"
        raise LayerError(msg) from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes, layer: str) -> dict[str, str]:
    """PAX extended header records: "LEN KEY=VALUE\\n"."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding after the last record
            break
        sp = data.find(b" ", pos)
        try:
            length = int(data[pos:sp])
        except ValueError:
            raise LayerError(f"layer {layer}: malformed PAX header record") from None
        if sp < 0 or length <= sp - pos or pos + length > len(data):
            raise LayerError(f"layer {layer}: malformed PAX header record length")
        record = data[sp + 1 : pos + length - 1]
        key, eq, value = record.partition(b"=")
        if not eq:
            raise LayerError(f"layer {layer}: malformed PAX header record {record[:40]!r}")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


_REGULAR = (b"0", b"\0", b"7")
_SKIP_TYPES = (b"V", b"M", b"N")  # volume labels, multi-volume continuations: no image content
_OTHER_TYPES = (b"3", b"4", b"6")


class _TarWalker:
    """Walks the members of one tar stream and turns them into `LayerItem`s."""

    def __init__(self, tape: _Tape, layer: LayerInfo, limits: Limits) -> None:
        self._tape = tape
        self._name = tape._meter.name
        self._unknown_layer = layer.diff_id or layer.digest or None
        self._limits = limits
        self._global_pax: dict[str, str] = {}
        self._linkable: set[str] = set()
        """Paths of this layer a hard link may point at (files and hard links seen so far)."""

    def walk(self) -> Iterator[LayerItem]:
        entries = 0
        while True:
            header = self._next_header()
            if header is None:
                return
            entries += 1
            if entries > self._limits.max_entries:
                raise LayerError(
                    f"layer {self._name}: more than {self._limits.max_entries} entries"
                )
            padded = (header.size + _BLOCK - 1) // _BLOCK * _BLOCK
            item = self._item(header)
            if item is not None and not isinstance(item, Unknown) and item.kind is EntryKind.FILE:
                content = _Content(self._tape, header.size)
                yield item, content
                content.finish()
                self._tape.skip(padded - header.size)
                continue
            if item is not None:
                yield (item, None) if isinstance(item, Entry) else item
            self._tape.skip(padded)

    def _next_header(self) -> _Header | None:
        """The next member's header with GNU long names and PAX records applied."""
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            block = self._tape.read_upto(_BLOCK)
            if not block or block.count(0) == _BLOCK:
                return None  # end-of-archive marker (or a stream ending on a member boundary)
            if len(block) != _BLOCK:
                raise LayerError(f"layer {self._name}: truncated tar: header cut short")
            self._check_sum(block)
            typ = block[156:157]
            if typ in (b"x", b"g", b"L", b"K"):
                size = _num(block[124:136], "size", self._name)
                if size > _MAX_META_BYTES:
                    raise LayerError(f"layer {self._name}: tar metadata record of {size} bytes")
                data = self._tape.take(size, "metadata record")
                self._tape.skip((size + _BLOCK - 1) // _BLOCK * _BLOCK - size)
                if typ == b"x":
                    pax.update(_parse_pax(data, self._name))
                elif typ == b"g":
                    self._global_pax.update(_parse_pax(data, self._name))
                elif typ == b"L":
                    long_name = _text(data)
                else:
                    long_link = _text(data)
                continue
            return self._header(block, {**self._global_pax, **pax}, long_name, long_link)

    def _check_sum(self, block: bytes) -> None:
        try:
            stored = _num(block[148:156], "checksum", self._name)
        except LayerError:
            stored = -1
        actual = sum(block[:148]) + 256 + sum(block[156:])  # the field itself counts as spaces
        if stored != actual:
            raise LayerError(
                f"layer {self._name}: not a tar archive or corrupt tar header at offset "
                f"{self._tape.offset - _BLOCK}"
            )

    def _header(
        self, block: bytes, pax: dict[str, str], long_name: str | None, long_link: str | None
    ) -> _Header:
        n = self._name
        name = _text(block[0:100])
        if block[257:263] == b"ustar\0" and block[345] != 0:  # POSIX prefix; GNU uses it otherwise
            name = _text(block[345:500]) + "/" + name
        header = _Header(
            name=long_name if long_name is not None else name,
            mode=_num(block[100:108], "mode", n),
            uid=_num(block[108:116], "uid", n),
            gid=_num(block[116:124], "gid", n),
            size=_num(block[124:136], "size", n),
            mtime=_num(block[136:148], "mtime", n),
            type=block[156:157],
            linkname=long_link if long_link is not None else _text(block[157:257]),
        )
        if pax:
            self._apply_pax(header, pax)
        if header.size < 0:
            raise LayerError(f"layer {n}: negative member size for {header.name!r}")
        return header

    def _apply_pax(self, header: _Header, pax: dict[str, str]) -> None:
        header.name = pax.get("path", header.name)
        header.linkname = pax.get("linkpath", header.linkname)
        try:
            header.size = int(pax.get("size", header.size))
            header.uid = int(pax.get("uid", header.uid))
            header.gid = int(pax.get("gid", header.gid))
            header.mtime = int(float(pax.get("mtime", header.mtime)))
        except ValueError:
            msg = f"layer {self._name}: malformed PAX number for {header.name!r}"
            raise LayerError(msg) from None

    def _unknown(self, where: str, reason: str) -> Unknown:
        return Unknown(where=where, reason=reason, layer=self._unknown_layer)

    def _item(self, h: _Header) -> Entry | Unknown | None:
        """The entry a member stands for; an Unknown for a hostile one; None to ignore it."""
        if h.type in _SKIP_TYPES:
            return None
        path = normalize_path(h.name)
        if path is None:
            return self._unknown(h.name, "tar member path escapes the image root; skipped")
        base = path.rsplit("/", 1)[1]
        if base.startswith(".wh."):
            return self._whiteout(h, path, base)
        kind = self._kind(h)
        if kind is None:
            return self._unknown(path, f"unsupported tar member type {h.type!r}; skipped")
        if path == "/" and kind is not EntryKind.DIR:
            return self._unknown(h.name, "tar member replaces the image root; skipped")
        link: str | None = None
        if kind is EntryKind.SYMLINK:
            link = h.linkname
        elif kind is EntryKind.HARDLINK:
            link = normalize_path(h.linkname)
            if link is None or link not in self._linkable:
                return self._unknown(path, f"hard link to missing target {h.linkname!r}; skipped")
        if kind in (EntryKind.FILE, EntryKind.HARDLINK):
            self._linkable.add(path)
        else:
            self._linkable.discard(path)
        return Entry(
            path=path,
            kind=kind,
            mode=stat.S_IMODE(h.mode),
            size=h.size if kind is EntryKind.FILE else 0,
            uid=h.uid,
            gid=h.gid,
            link_target=link,
            mtime=h.mtime,
        )

    @staticmethod
    def _kind(h: _Header) -> EntryKind | None:
        t = h.type
        if t in _REGULAR:
            return EntryKind.DIR if h.name.endswith("/") else EntryKind.FILE
        if t == b"5":
            return EntryKind.DIR
        if t == b"2":
            return EntryKind.SYMLINK
        if t == b"1":
            return EntryKind.HARDLINK
        if t in _OTHER_TYPES:
            return EntryKind.OTHER
        return None

    def _whiteout(self, h: _Header, path: str, base: str) -> Entry | Unknown | None:
        parent = path.rsplit("/", 1)[0] or "/"
        if base == ".wh..wh..opq":
            return Entry(path=parent, kind=EntryKind.OPAQUE, mtime=h.mtime)
        if base.startswith(".wh..wh."):
            return None  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not image content
        target = base[len(".wh.") :]
        if target in ("", ".", ".."):
            return self._unknown(path, "malformed whiteout name; skipped")
        wpath = parent.rstrip("/") + "/" + target
        return Entry(path=wpath, kind=EntryKind.WHITEOUT, mtime=h.mtime)
