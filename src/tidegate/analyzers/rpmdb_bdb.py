"""A read-only reader of Berkeley DB hash files, enough for rpm's `Packages` database.

Owns the on-disk layout of a BDB hash database (libdb's db_page.h), in pure Python:

- page 0 is the hash metadata page: magic 0x061561 at offset 12 in the byte order of the machine
  that wrote the file (both orders are read), page size at 20, encryption at 24, last page at 32;
- hash pages (type 13, or 2 "unsorted" in old libdb as on RHEL/CentOS 5) hold a 26-byte page
  header, then `entries` 16-bit offsets of items, keys and values alternating;
- an item is H_KEYDATA (1, inline bytes) or H_OFFPAGE (3: the value lives on a chain of overflow
  pages (type 7), each holding `hf_offset` bytes after its header; the item gives the first page
  and the total length).

rpm keeps one header blob per value, keyed by its 4-byte instance number; key 0 holds a counter,
not a package. Pages are read from the bytes in memory; every page number, offset and length is
checked, chains are bounded by their declared length and never revisit a page, so a corrupt or
hostile file yields problems, never a hang or an out-of-range read.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

HASH_MAGIC = 0x061561
VALID_PAGE_SIZES = frozenset(1 << n for n in range(9, 17))  # 512 .. 65536
PAGE_HEADER_SIZE = 26

P_HASH_UNSORTED = 2
P_OVERFLOW = 7
P_HASHMETA = 8
P_HASH = 13

H_KEYDATA = 1
H_OFFPAGE = 3


class BdbError(ValueError):
    """The file is not a Berkeley DB hash database this reader can read at all."""


@dataclass(frozen=True, slots=True)
class HashMeta:
    """What the metadata page says about the file."""

    byteorder: str
    """"<" little endian or ">" big endian, as `struct` writes them."""
    page_size: int
    last_page: int


@dataclass(slots=True)
class HashReader:
    """Reads the values of a hash database held in memory; `problems` collects what was skipped."""

    data: bytes
    meta: HashMeta = field(init=False)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.meta = read_meta(self.data)

    def values(self) -> Iterator[bytes]:
        """Every value of every key/value pair, in page order (key 0 and short values skipped)."""
        page_size = self.meta.page_size
        pages_in_file = len(self.data) // page_size
        last = self.meta.last_page
        if last >= pages_in_file:
            self.problems.append(
                f"file truncated: metadata names {last + 1} pages, file holds {pages_in_file}"
            )
            last = pages_in_file - 1
        for pgno in range(1, last + 1):
            page = memoryview(self.data)[pgno * page_size : (pgno + 1) * page_size]
            if page[25] in (P_HASH, P_HASH_UNSORTED):
                yield from self._page_values(pgno, page)

    def _page_values(self, pgno: int, page: memoryview) -> Iterator[bytes]:
        order = self.meta.byteorder
        (entries,) = struct.unpack_from(order + "H", page, 20)
        if PAGE_HEADER_SIZE + 2 * entries > len(page):
            self.problems.append(f"page {pgno}: {entries} items do not fit in the page")
            return
        offsets = struct.unpack_from(f"{order}{entries}H", page, PAGE_HEADER_SIZE)
        for index in range(1, entries, 2):
            key = self._inline_item(page, offsets, index - 1)
            if key is not None and not any(key):
                continue  # key 0: rpm's instance counter, not a header
            value = self._value(pgno, page, offsets, index)
            if value is not None and len(value) >= 16:
                yield value

    def _inline_item(self, page: memoryview, offsets: tuple[int, ...], index: int) -> bytes | None:
        """The bytes of an H_KEYDATA item (its length is up to the previous item), else None."""
        start = offsets[index]
        end = len(page) if index == 0 else offsets[index - 1]
        if not PAGE_HEADER_SIZE <= start < end <= len(page) or page[start] != H_KEYDATA:
            return None
        return bytes(page[start + 1 : end])

    def _value(
        self, pgno: int, page: memoryview, offsets: tuple[int, ...], index: int
    ) -> bytes | None:
        start = offsets[index]
        if not PAGE_HEADER_SIZE <= start < len(page):
            self.problems.append(f"page {pgno}: item {index} at offset {start} is outside the page")
            return None
        kind = page[start]
        if kind == H_KEYDATA:
            return self._inline_item(page, offsets, index)
        if kind != H_OFFPAGE:
            self.problems.append(f"page {pgno}: item {index} has unsupported type {kind}")
            return None
        if start + 12 > len(page):
            self.problems.append(f"page {pgno}: off-page item {index} is cut by the page end")
            return None
        first, total = struct.unpack_from(self.meta.byteorder + "II", page, start + 4)
        return self._overflow_chain(pgno, first, total)

    def _overflow_chain(self, pgno: int, first: int, total: int) -> bytes | None:
        page_size, order = self.meta.page_size, self.meta.byteorder
        if total > len(self.data):
            self.problems.append(f"page {pgno}: value of {total} bytes is larger than the file")
            return None
        chunks: list[bytes] = []
        collected, current, seen = 0, first, set[int]()
        while collected < total:
            if current in seen or current == 0 or (current + 1) * page_size > len(self.data):
                self.problems.append(f"page {pgno}: broken overflow chain at page {current}")
                return None
            seen.add(current)
            page = memoryview(self.data)[current * page_size : (current + 1) * page_size]
            nxt, _, length = struct.unpack_from(order + "IHH", page, 16)
            if page[25] != P_OVERFLOW or length > page_size - PAGE_HEADER_SIZE:
                self.problems.append(f"page {pgno}: overflow page {current} is malformed")
                return None
            chunks.append(bytes(page[PAGE_HEADER_SIZE : PAGE_HEADER_SIZE + length]))
            collected += length
            current = nxt
        return b"".join(chunks)[:total]


def read_meta(data: bytes) -> HashMeta:
    """The hash metadata page; `BdbError` when the file is not a readable BDB hash database."""
    if len(data) < 512:
        raise BdbError(f"{len(data)} bytes is too short for a Berkeley DB metadata page")
    for order in ("<", ">"):
        (magic,) = struct.unpack_from(order + "I", data, 12)
        if magic == HASH_MAGIC:
            break
    else:
        raise BdbError(f"no Berkeley DB hash magic (found {data[12:16].hex()})")
    page_size, encrypt_alg, page_type = struct.unpack_from(order + "IBB", data, 20)
    (last_page,) = struct.unpack_from(order + "I", data, 32)
    if page_size not in VALID_PAGE_SIZES:
        raise BdbError(f"page size {page_size} is not a Berkeley DB page size")
    if encrypt_alg != 0:
        raise BdbError("the database is encrypted")
    if page_type != P_HASHMETA:
        raise BdbError(f"page 0 has type {page_type}, not a hash metadata page")
    return HashMeta(byteorder=order, page_size=page_size, last_page=last_page)
