"""Go build information, read from a binary streamed in chunks (no random access, no buffering).

The Go linker leaves a blob in the binary's data: a 32-byte header that starts with the magic
`\\xff Go buildinf:` at a 16-byte aligned offset, then the pointer size and a flags byte. Since
Go 1.18 (flags bit 2) the header is followed inline by two varint-prefixed strings: the Go version
(`runtime.buildVersion`) and the module information (`runtime.modinfo`, the text that
`go version -m` prints). Older binaries store pointers to those strings instead; following them
needs random access to earlier parts of the file, which a single streaming pass cannot do.

`BuildInfoScanner` finds the blob as the chunks go by (a magic split across two chunks included);
`parse_modinfo` reads the module text like `runtime/debug.ParseBuildInfo`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
ALIGN = 16
MAX_MODINFO = 4 * 1024 * 1024
"""Larger module information than any real binary carries is treated as not build info."""
_FLAG_BIG_ENDIAN = 1
_FLAG_INLINE_STRINGS = 2
# modinfo is framed by two 16-byte sentinels (cmd/go/internal/modload infoStart/infoEnd).
_SENTINEL_LEN = 16
# Executable formats Go writes: ELF, Mach-O (32/64 bit, both byte orders, fat), PE.
_EXECUTABLE_MAGICS = (
    b"\x7fELF",
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"MZ",
)


class ScanState(StrEnum):
    """Where a `BuildInfoScanner` stands."""

    SEARCHING = "searching"
    NOT_EXECUTABLE = "not-executable"
    """The file does not start like an ELF, Mach-O or PE binary: nothing to look for."""
    FOUND = "found"
    """Go >= 1.18 build info was read: `version` and `modinfo` are set."""
    TRUNCATED = "truncated"
    """A build info header whose strings are cut off by the end of the file."""
    POINTER_FORMAT = "pointer-format"
    """Build info of Go < 1.18 (pointers to the strings): found but not readable in one pass."""


@dataclass(frozen=True, slots=True)
class Module:
    """One module line of the build info (`mod`, `dep` or the `=>` replacing them)."""

    path: str
    version: str
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True, slots=True)
class ModInfo:
    """The parsed `runtime.modinfo` text."""

    path: str = ""
    """The main package's import path ("example.com/cmd/tool", "command-line-arguments")."""
    main: Module | None = None
    deps: tuple[Module, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()
    """`build` lines in order: ("GOOS", "linux"), ("vcs.revision", "..."), ("-ldflags", ...)."""


class ModInfoError(ValueError):
    """A module information text that does not follow the build info format."""


def _uvarint(data: bytes | bytearray, pos: int) -> tuple[int, int] | None:
    """Decode an unsigned varint at `pos`: (value, next pos), None when more bytes are needed."""
    value = shift = 0
    for i in range(pos, min(len(data), pos + 10)):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
    if len(data) - pos >= 10:
        raise ModInfoError("varint longer than 10 bytes")
    return None


def _string_at(data: bytearray, pos: int) -> tuple[bytes, int] | None:
    decoded = _uvarint(data, pos)
    if decoded is None:
        return None
    length, start = decoded
    if length > MAX_MODINFO:
        raise ModInfoError(f"string of {length} bytes")
    if len(data) < start + length:
        return None
    return bytes(data[start : start + length]), start + length


class BuildInfoScanner:
    """Finds Go build info in a file fed in order, chunk by chunk.

    Memory stays small: while searching, only the last len(MAGIC)-1 bytes of the previous chunk
    are kept (for a magic split across chunks); after a candidate header, only the blob itself.
    """

    __slots__ = ("_blob", "_checked", "_offset", "_tail", "modinfo", "state", "version")

    def __init__(self) -> None:
        self.state = ScanState.SEARCHING
        self.version = ""
        self.modinfo = ""
        self._checked = False  # the file's first bytes were compared with executable magics
        self._offset = 0  # file offset of the first byte of `_tail` (or of `_blob`)
        self._tail = b""
        self._blob: bytearray | None = None

    @property
    def done(self) -> bool:
        return self.state is not ScanState.SEARCHING

    def feed(self, chunk: bytes) -> None:
        if self.done or not chunk:
            return
        if not self._checked:
            head = self._tail + chunk
            if len(head) < 4:
                self._tail = head
                return
            self._checked, self._tail, chunk = True, b"", head
            if not head.startswith(_EXECUTABLE_MAGICS):
                self.state = ScanState.NOT_EXECUTABLE
                return
        if self._blob is not None:
            self._blob += chunk
            self._try_blob()
        else:
            self._search(chunk)

    def finish(self) -> None:
        """No more input: a file too short for the format check is not a binary."""
        if not self._checked:
            self.state = ScanState.NOT_EXECUTABLE
        elif self._blob is not None and len(self._blob) >= HEADER_SIZE:
            # A valid header whose strings the file ends before.
            self.state = ScanState.TRUNCATED

    def _search(self, chunk: bytes) -> None:
        if len(chunk) < len(MAGIC):  # a tiny chunk: joining it with the tail copies little
            self._search_in(self._tail + chunk, self._offset)
            return
        # A magic that starts in the previous chunk's tail: look in a small joined window only,
        # so that big chunks are never copied.
        if self._tail:
            window = self._tail + chunk[: len(MAGIC) - 1]
            pos = window.find(MAGIC)
            while 0 <= pos < len(self._tail):
                if (self._offset + pos) % ALIGN == 0:
                    self._start_blob(self._tail[pos:] + chunk, self._offset + pos)
                    return
                pos = window.find(MAGIC, pos + 1)
        self._search_in(chunk, self._offset + len(self._tail))

    def _search_in(self, data: bytes, base: int) -> None:
        pos = data.find(MAGIC)
        while pos >= 0:
            if (base + pos) % ALIGN == 0:
                self._start_blob(data[pos:], base + pos)
                return
            pos = data.find(MAGIC, pos + 1)
        keep = min(len(data), len(MAGIC) - 1)
        self._tail = data[len(data) - keep :]
        self._offset = base + len(data) - keep

    def _start_blob(self, data: bytes, offset: int) -> None:
        self._blob = bytearray(data)
        self._offset = offset
        self._tail = b""
        self._try_blob()

    def _try_blob(self) -> None:
        """Decode the candidate blob; resume searching after it if it is not build info."""
        blob = self._blob
        assert blob is not None
        try:
            complete = self._decode(blob)
        except ModInfoError:
            blob[: len(MAGIC)] = b"\0" * len(MAGIC)  # not build info: search past this magic
            self._blob = None
            self._search_in(bytes(blob), self._offset)
            return
        if complete:
            self._blob = None

    def _decode(self, blob: bytearray) -> bool:
        """True when decoded (state set), False when more bytes are needed."""
        if len(blob) < HEADER_SIZE:
            return False
        pointer_size, flags = blob[14], blob[15]
        if pointer_size not in (4, 8) or flags & ~(_FLAG_BIG_ENDIAN | _FLAG_INLINE_STRINGS):
            raise ModInfoError("not a build info header")
        if not flags & _FLAG_INLINE_STRINGS:
            self.state = ScanState.POINTER_FORMAT
            return True
        version = _string_at(blob, HEADER_SIZE)
        if version is None:
            return False
        modinfo = _string_at(blob, version[1])
        if modinfo is None:
            return False
        text = version[0].decode("utf-8", "replace")
        if not text.startswith(("go", "devel")):
            raise ModInfoError(f"Go version {text!r}")
        self.version, self.modinfo = text, _unframe(modinfo[0]).decode("utf-8", "replace")
        self.state = ScanState.FOUND
        return True


def _unframe(modinfo: bytes) -> bytes:
    """Strip the sentinels around the module text, as debug/buildinfo does."""
    if len(modinfo) >= 2 * _SENTINEL_LEN + 1 and modinfo[-_SENTINEL_LEN - 1] == ord("\n"):
        return modinfo[_SENTINEL_LEN:-_SENTINEL_LEN]
    return b""


def _module(fields: list[str], line: str) -> Module:
    if len(fields) not in (2, 3) or not fields[0]:
        raise ModInfoError(f"bad module line {line!r}")
    return Module(fields[0], fields[1], fields[2] if len(fields) == 3 else "")


def _unquote(quoted: str) -> str:
    """A Go-quoted string (strconv.Quote); JSON's escapes cover what build settings use."""
    try:
        value = json.loads(quoted)
    except json.JSONDecodeError:
        return quoted[1:-1]
    return value if isinstance(value, str) else quoted[1:-1]


def _quoted_prefix(text: str) -> str | None:
    """The leading Go-quoted string of `text` (quotes included), None when unterminated."""
    match = re.match(r'"(?:[^"\\]|\\.)*"', text)
    return match.group(0) if match else None


def _setting(value: str, line: str) -> tuple[str, str]:
    # Keys and values holding spaces, tabs, quotes or "=" are Go-quoted.
    if value.startswith('"'):
        quoted = _quoted_prefix(value)
        if quoted is None or value[len(quoted) : len(quoted) + 1] != "=":
            raise ModInfoError(f"bad build line {line!r}")
        key, val = _unquote(quoted), value[len(quoted) + 1 :]
    else:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ModInfoError(f"bad build line {line!r}")
    if val.startswith('"'):
        val = _unquote(val)
    return key, val


def parse_modinfo(text: str) -> ModInfo:
    """Parse the module text (`path`, `mod`, `dep`, `=>`, `build` lines, tab separated)."""
    path = ""
    main: Module | None = None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        match kind:
            case "path":
                path = rest
            case "mod":
                main = _module(rest.split("\t"), line)
            case "dep":
                deps.append(_module(rest.split("\t"), line))
            case "=>":
                replacement = _module(rest.split("\t"), line)
                if deps:
                    last = deps.pop()
                    deps.append(Module(last.path, last.version, last.sum, replacement))
                elif main is not None:
                    main = Module(main.path, main.version, main.sum, replacement)
                else:
                    raise ModInfoError(f"replacement without a module: {line!r}")
            case "build":
                settings.append(_setting(rest, line))
            case "":
                continue
            case _:
                raise ModInfoError(f"unexpected line {line!r}")
    return ModInfo(path, main, tuple(deps), tuple(settings))
