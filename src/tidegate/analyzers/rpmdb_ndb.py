"""A reader of rpm's "ndb" package database (`Packages.db`, SUSE and openSUSE).

Owns the layout rpm's lib/backend/ndb/rpmpkg.c writes, all little endian:

- a 32-byte header: magic "RpmP", version 0, generation, number of 4 KiB slot pages;
- slot pages: 16-byte slots ("Slot", package index, block offset, block count) after the header;
  a block offset of 0 is a free slot;
- at block offset * 16, a blob: 16-byte head ("BlbS", package index, generation, length), the
  header blob, zero padding, and a 12-byte tail (Adler-32 of head, blob and padding; length;
  "BlbE").

Every slot is checked against the file and its blob's head, tail and checksum; a bad slot is a
problem (reported, skipped), a bad file header is an `NdbError`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

NDB_MAGIC = b"RpmP"
SLOT_MAGIC = b"Slot"
BLOB_HEAD_MAGIC = b"BlbS"
BLOB_TAIL_MAGIC = b"BlbE"
PAGE_SIZE = 4096
BLOCK_SIZE = 16
HEADER_SIZE = 32
BLOB_HEAD_SIZE = 16
BLOB_TAIL_SIZE = 12


class NdbError(ValueError):
    """The file is not an rpm ndb database."""


@dataclass(slots=True)
class NdbReader:
    """Reads the header blobs of an ndb database in memory; `problems` collects skipped slots."""

    data: bytes
    slot_pages: int = field(init=False)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.data) < HEADER_SIZE or self.data[:4] != NDB_MAGIC:
            raise NdbError("no rpm ndb magic ('RpmP') at the start of the file")
        version, _generation, pages = struct.unpack_from("<III", self.data, 4)
        if version != 0:
            raise NdbError(f"unsupported ndb version {version}")
        if pages == 0 or pages * PAGE_SIZE > len(self.data):
            raise NdbError(f"{pages} slot pages do not fit in a {len(self.data)}-byte file")
        self.slot_pages = pages

    def blobs(self) -> Iterator[tuple[int, bytes]]:
        """(package index, header blob) of every used slot, in slot order."""
        first_block = self.slot_pages * PAGE_SIZE // BLOCK_SIZE
        for offset in range(HEADER_SIZE, self.slot_pages * PAGE_SIZE, 16):
            magic, index, block, count = struct.unpack_from("<4sIII", self.data, offset)
            if magic != SLOT_MAGIC:
                self.problems.append(f"slot at byte {offset}: bad magic {magic!r}")
                return  # past a broken slot area nothing can be trusted
            if block == 0:
                continue
            if index == 0 or block < first_block:
                self.problems.append(f"slot at byte {offset}: invalid entry")
                continue
            blob = self._blob(index, block, count)
            if blob is not None:
                yield index, blob

    def _blob(self, index: int, block: int, count: int) -> bytes | None:
        start, end = block * BLOCK_SIZE, (block + count) * BLOCK_SIZE
        where = f"package {index}"
        if end > len(self.data) or count * BLOCK_SIZE < BLOB_HEAD_SIZE + BLOB_TAIL_SIZE:
            self.problems.append(f"{where}: blob of {count} blocks outside the file")
            return None
        magic, blob_index, _generation, length = struct.unpack_from("<4sIII", self.data, start)
        expected_count = -(-(BLOB_HEAD_SIZE + length + BLOB_TAIL_SIZE) // BLOCK_SIZE)
        if magic != BLOB_HEAD_MAGIC or blob_index != index or expected_count != count:
            self.problems.append(f"{where}: blob head does not match its slot")
            return None
        checksum, tail_length, tail_magic = struct.unpack_from("<I I 4s", self.data, end - 12)
        if tail_magic != BLOB_TAIL_MAGIC or tail_length != length:
            self.problems.append(f"{where}: blob tail does not match its head")
            return None
        if zlib.adler32(self.data[start : end - BLOB_TAIL_SIZE]) != checksum:
            self.problems.append(f"{where}: blob checksum mismatch")
            return None
        return self.data[start + BLOB_HEAD_SIZE : start + BLOB_HEAD_SIZE + length]
