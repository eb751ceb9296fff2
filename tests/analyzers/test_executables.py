"""The executable inventory: which entries are hashed, and that streamed hashes are exact."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import pytest

from tidegate.analyzers.executables import ExecutablesAnalyzer
from tidegate.core.files import Entry, EntryKind

LAYER = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("kind", "mode", "wanted"),
    [
        (EntryKind.FILE, 0o755, True),
        (EntryKind.FILE, 0o700, True),
        (EntryKind.FILE, 0o010, True),  # group execute only
        (EntryKind.FILE, 0o001, True),  # other execute only
        (EntryKind.FILE, 0o4755, True),  # setuid
        (EntryKind.FILE, 0o4644, True),  # setuid without execute: still worth listing
        (EntryKind.FILE, 0o2644, True),  # setgid without execute
        (EntryKind.FILE, 0o644, False),
        (EntryKind.FILE, 0o1644, False),  # sticky alone
        (EntryKind.FILE, 0o000, False),
        (EntryKind.DIR, 0o755, False),
        (EntryKind.SYMLINK, 0o777, False),
        (EntryKind.HARDLINK, 0o755, False),
        (EntryKind.OTHER, 0o755, False),
    ],
)
def test_wants(kind: EntryKind, mode: int, wanted: bool) -> None:
    entry = Entry(path="/usr/bin/x", kind=kind, mode=mode, size=10)
    assert ExecutablesAnalyzer().wants(entry) is wanted


def _real_binaries() -> list[Path]:
    found = []
    for name in ("busybox", "ls", "sh"):
        located = shutil.which(name)
        if located:
            found.append(Path(located).resolve())
    return sorted(set(found))


@pytest.mark.parametrize("chunk_size", [1, 4096, 65536, 1024 * 1024, 64 * 1024 * 1024])
@pytest.mark.parametrize("binary", _real_binaries(), ids=str)
def test_streamed_hash_of_a_real_binary_equals_hash_of_whole_file(
    binary: Path, chunk_size: int
) -> None:
    data = binary.read_bytes()
    if chunk_size == 1:
        data = data[:50_000]  # byte by byte: a prefix keeps the test quick
    st = binary.stat()
    entry = Entry(
        path="/bin/" + binary.name,
        kind=EntryKind.FILE,
        mode=stat.S_IMODE(st.st_mode),
        size=len(data),
        uid=st.st_uid,
        gid=st.st_gid,
    )
    consumer = ExecutablesAnalyzer().begin(entry, LAYER)
    for start in range(0, len(data), chunk_size):
        consumer.feed(data[start : start + chunk_size])
    found = consumer.finish()
    assert found.analyzer == "executables"
    assert found.unknowns == ()
    executable = found.executable
    assert executable is not None
    assert executable.sha256 == hashlib.sha256(data).hexdigest()
    assert executable.size == len(data)
    assert (executable.path, executable.mode, executable.layer) == (entry.path, entry.mode, LAYER)
    assert (executable.uid, executable.gid) == (st.st_uid, st.st_gid)


@pytest.mark.parametrize(
    ("mode", "setuid", "setgid"),
    [(0o4755, True, False), (0o2755, False, True), (0o6755, True, True), (0o755, False, False)],
)
def test_setuid_and_setgid_modes_are_kept(
    tmp_path: Path, mode: int, setuid: bool, setgid: bool
) -> None:
    # A real file with the mode set on disk, read back through stat as an image reader would.
    path = tmp_path / "su"
    path.write_bytes(b"\x7fELF" + bytes(range(256)) * 10)
    path.chmod(mode)
    st = path.stat()
    entry = Entry(
        path="/usr/bin/su", kind=EntryKind.FILE, mode=stat.S_IMODE(st.st_mode), size=st.st_size
    )
    analyzer = ExecutablesAnalyzer()
    assert analyzer.wants(entry)
    consumer = analyzer.begin(entry, None)
    consumer.feed(path.read_bytes())
    executable = consumer.finish().executable
    assert executable is not None
    assert executable.mode == mode
    assert (executable.setuid, executable.setgid) == (setuid, setgid)
    assert executable.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_empty_executable_has_the_empty_hash() -> None:
    entry = Entry(path="/usr/bin/true-ish", kind=EntryKind.FILE, mode=0o755, size=0)
    executable = ExecutablesAnalyzer().begin(entry, None).finish().executable
    assert executable is not None
    assert executable.sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("fed", [b"", b"short", b"x" * 11])
def test_content_size_differing_from_header_is_an_unknown_not_a_wrong_hash(fed: bytes) -> None:
    entry = Entry(path="/usr/bin/tool", kind=EntryKind.FILE, mode=0o755, size=10)
    consumer = ExecutablesAnalyzer().begin(entry, LAYER)
    consumer.feed(fed)
    found = consumer.finish()
    assert found.executable is None
    (unknown,) = found.unknowns
    assert (unknown.where, unknown.analyzer, unknown.layer) == (
        "/usr/bin/tool",
        "executables",
        LAYER,
    )
    assert f"read {len(fed)} bytes" in unknown.reason
