"""RPM header blobs as rpm databases store them, and the package facts Tidegate reads from them.

Owns the header format (rpm's `headerImport`): two big-endian counts — `il` index entries and
`dl` bytes of data — then `il` 16-byte entries (tag, type, offset, count) and the data store.
Blobs in a database carry no lead or header magic. Every offset and count is checked against
the blob before it is used, so a hostile blob raises `HeaderError`, never reads out of bounds,
and never allocates by a count it declares.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

HEADER_MAX_ENTRIES = 0xFFFF
"""rpm's own limits (HEADER_TAGS_MAX, HEADER_DATA_MAX): larger counts are corruption."""
HEADER_MAX_DATA = 0x0FFFFFFF
_INDEX = struct.Struct(">iIiI")


class HeaderError(ValueError):
    """A header blob that is not a well-formed rpm header."""


class Tag(IntEnum):
    """The header tags Tidegate reads."""

    NAME = 1000
    VERSION = 1001
    RELEASE = 1002
    EPOCH = 1003
    LICENSE = 1014
    ARCH = 1022
    SOURCERPM = 1044


class TagType(IntEnum):
    NULL = 0
    CHAR = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    STRING = 6
    BIN = 7
    STRING_ARRAY = 8
    I18NSTRING = 9


_STRING_TYPES = frozenset({TagType.STRING, TagType.STRING_ARRAY, TagType.I18NSTRING})


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """The facts of one installed package's header."""

    name: str
    version: str
    release: str
    epoch: int | None = None
    arch: str = ""
    license: str = ""
    sourcerpm: str = ""

    @property
    def evr(self) -> str:
        """`[epoch:]version-release`, the epoch written whenever the header has one."""
        prefix = "" if self.epoch is None else f"{self.epoch}:"
        return f"{prefix}{self.version}-{self.release}"


def parse_header(blob: bytes) -> RpmHeader:
    """The package facts of a header blob; `HeaderError` when it is malformed or incomplete."""
    entries, store = _index(blob)
    strings: dict[int, str] = {}
    epoch: int | None = None
    for tag, type_, offset, count in entries:
        if tag == Tag.EPOCH and epoch is None:
            epoch = _int32(tag, type_, offset, count, store)
        elif tag in _WANTED_STRINGS and tag not in strings:
            strings[tag] = _string(tag, type_, offset, count, store)
    missing = [t.name for t in (Tag.NAME, Tag.VERSION, Tag.RELEASE) if not strings.get(t)]
    if missing:
        raise HeaderError(f"header without {', '.join(missing)}")
    return RpmHeader(
        name=strings[Tag.NAME],
        version=strings[Tag.VERSION],
        release=strings[Tag.RELEASE],
        epoch=epoch,
        arch=strings.get(Tag.ARCH, ""),
        license=strings.get(Tag.LICENSE, ""),
        sourcerpm=strings.get(Tag.SOURCERPM, ""),
    )


_WANTED_STRINGS = frozenset(
    {Tag.NAME, Tag.VERSION, Tag.RELEASE, Tag.ARCH, Tag.LICENSE, Tag.SOURCERPM}
)


@dataclass(frozen=True, slots=True)
class _Store:
    """The data store of a header: `size` bytes of `blob` from `start`."""

    blob: bytes
    start: int
    size: int


def _index(blob: bytes) -> tuple[list[tuple[int, int, int, int]], _Store]:
    if len(blob) < 8:
        raise HeaderError(f"header of {len(blob)} bytes is shorter than its 8-byte preamble")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il == 0 or il > HEADER_MAX_ENTRIES:
        raise HeaderError(f"header declares {il} index entries (allowed 1..{HEADER_MAX_ENTRIES})")
    if dl > HEADER_MAX_DATA:
        raise HeaderError(f"header declares {dl} bytes of data (limit {HEADER_MAX_DATA})")
    data_start = 8 + 16 * il
    if data_start + dl > len(blob):
        raise HeaderError(
            f"header truncated: {il} entries and {dl} data bytes need {data_start + dl} bytes, "
            f"blob has {len(blob)}"
        )
    entries = [_INDEX.unpack_from(blob, 8 + 16 * i) for i in range(il)]
    return entries, _Store(blob, data_start, dl)


def _string(tag: int, type_: int, offset: int, count: int, store: _Store) -> str:
    """The (first) string of a STRING, STRING_ARRAY or I18NSTRING entry."""
    if type_ not in _STRING_TYPES or count < 1:
        raise HeaderError(f"tag {tag}: type {type_} count {count} where a string is expected")
    if not 0 <= offset < store.size:
        raise HeaderError(f"tag {tag}: offset {offset} outside the {store.size}-byte data store")
    start = store.start + offset
    end = store.blob.find(b"\x00", start, store.start + store.size)
    if end < 0:
        raise HeaderError(f"tag {tag}: string at offset {offset} is not NUL-terminated")
    return store.blob[start:end].decode("utf-8", errors="replace")


def _int32(tag: int, type_: int, offset: int, count: int, store: _Store) -> int:
    if type_ != TagType.INT32 or count < 1:
        raise HeaderError(f"tag {tag}: type {type_} count {count} where an int32 is expected")
    if not 0 <= offset <= store.size - 4:
        raise HeaderError(f"tag {tag}: offset {offset} outside the {store.size}-byte data store")
    value: int = struct.unpack_from(">I", store.blob, store.start + offset)[0]
    return value


def split_source_rpm(filename: str) -> tuple[str, str] | None:
    """("openssl", "3.0.7-24.el9") from "openssl-3.0.7-24.el9.src.rpm"; None if not that shape."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if filename.endswith(suffix):
            stem = filename[: -len(suffix)]
            break
    else:
        return None
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    name, version, release = parts
    return name, f"{version}-{release}"
