"""fanotify(7) through ctypes: the kernel interface the runtime monitor decides execs with.

Owns: the constants of <linux/fanotify.h> the monitor uses, `FanotifyGroup` (a notification
group of class FAN_CLASS_CONTENT, i.e. allowed to hold permission events), filesystem marks for
FAN_OPEN_EXEC_PERM, reading `struct fanotify_event_metadata` records, writing
`struct fanotify_response` answers (FAN_ALLOW / FAN_DENY: the exec then fails with EPERM), and
the path of an event's file through /proc/self/fd.

Why a filesystem mark: a container's root is its own overlay superblock; a mount mark on the
host's view of the merged dir does not see execs made through the container's mount namespace,
a filesystem mark (FAN_MARK_FILESYSTEM) on that superblock does. When the group's file
descriptor is closed the kernel answers every pending permission event with FAN_ALLOW, so a
monitor that dies never leaves a process hanging.

Errors of the kernel are translated once, into `FanotifyError` carrying the errno.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from tidegate.enforcer.errors import EnforcerError

__all__ = [
    "FAN_ALLOW",
    "FAN_CLASS_CONTENT",
    "FAN_CLOEXEC",
    "FAN_DENY",
    "FAN_MARK_ADD",
    "FAN_MARK_FILESYSTEM",
    "FAN_MARK_REMOVE",
    "FAN_NOFD",
    "FAN_NONBLOCK",
    "FAN_OPEN_EXEC_PERM",
    "FAN_Q_OVERFLOW",
    "FanotifyError",
    "FanotifyEvent",
    "FanotifyGroup",
    "fd_path",
]

# <linux/fanotify.h>
FAN_CLOEXEC = 0x00000001
FAN_NONBLOCK = 0x00000002
FAN_CLASS_CONTENT = 0x00000004
FAN_UNLIMITED_QUEUE = 0x00000010
FAN_MARK_ADD = 0x00000001
FAN_MARK_REMOVE = 0x00000002
FAN_MARK_FILESYSTEM = 0x00000100
FAN_Q_OVERFLOW = 0x00004000
FAN_OPEN_EXEC_PERM = 0x00040000
FAN_ALLOW = 0x01
FAN_DENY = 0x02
FAN_NOFD = -1
FANOTIFY_METADATA_VERSION = 3
AT_FDCWD = -100

# struct fanotify_event_metadata { __u32 event_len; __u8 vers; __u8 reserved;
#   __u16 metadata_len; __aligned_u64 mask; __s32 fd; __s32 pid; }
_METADATA = struct.Struct("=IBBHQii")
# struct fanotify_response { __s32 fd; __u32 response; }
_RESPONSE = struct.Struct("=iI")
_READ_SIZE = 64 * _METADATA.size


class FanotifyError(EnforcerError):
    """A fanotify call the kernel refused; `errno` says why (EPERM: no CAP_SYS_ADMIN, EINVAL:
    a flag this kernel lacks, ENOSYS: no fanotify, ENODEV/EXDEV: a file system without marks)."""

    def __init__(self, message: str, errno_value: int) -> None:
        super().__init__(message)
        self.errno = errno_value


@cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    libc.fanotify_init.restype = ctypes.c_int
    libc.fanotify_mark.argtypes = [
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint64,
        ctypes.c_int,
        ctypes.c_char_p,
    ]
    libc.fanotify_mark.restype = ctypes.c_int
    return libc


def _failure(call: str, value: int) -> FanotifyError:
    return FanotifyError(
        f"{call}: {errno.errorcode.get(value, value)} ({os.strerror(value)})", value
    )


@dataclass(frozen=True, slots=True)
class FanotifyEvent:
    """One event as read from the group: the caller must answer (permission events) and close."""

    mask: int
    fd: int
    """An open, read-only descriptor of the file (FAN_NOFD on a queue overflow)."""
    pid: int
    """The acting process, as the host sees it."""

    @property
    def overflow(self) -> bool:
        return bool(self.mask & FAN_Q_OVERFLOW)


class FanotifyGroup:
    """One fanotify group that holds exec permission events (needs CAP_SYS_ADMIN)."""

    def __init__(self, *, nonblocking: bool = True) -> None:
        flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_UNLIMITED_QUEUE
        if nonblocking:
            flags |= FAN_NONBLOCK
        event_flags = os.O_RDONLY | os.O_LARGEFILE | os.O_CLOEXEC
        fd = _libc().fanotify_init(flags, event_flags)
        if fd < 0:
            raise _failure("fanotify_init(FAN_CLASS_CONTENT)", ctypes.get_errno())
        self.fd: int = fd

    def _mark(self, action: int, path: str) -> None:
        flags = action | FAN_MARK_FILESYSTEM
        rc = _libc().fanotify_mark(self.fd, flags, FAN_OPEN_EXEC_PERM, AT_FDCWD, os.fsencode(path))
        if rc < 0:
            verb = "add" if action == FAN_MARK_ADD else "remove"
            raise _failure(f"fanotify_mark({verb} filesystem mark on {path})", ctypes.get_errno())

    def mark_filesystem(self, path: str) -> None:
        """Watch every exec on the file system (superblock) holding `path`."""
        self._mark(FAN_MARK_ADD, path)

    def unmark_filesystem(self, path: str) -> None:
        self._mark(FAN_MARK_REMOVE, path)

    def read(self) -> Iterator[FanotifyEvent]:
        """The events waiting now (none when the non-blocking group has nothing)."""
        try:
            data = os.read(self.fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError as exc:
            raise _failure("read(fanotify)", exc.errno or errno.EIO) from exc
        offset = 0
        while offset + _METADATA.size <= len(data):
            length, version, _, _, mask, fd, pid = _METADATA.unpack_from(data, offset)
            if version != FANOTIFY_METADATA_VERSION or length < _METADATA.size:
                raise FanotifyError(
                    f"fanotify: unexpected metadata version {version}", errno.EPROTO
                )
            yield FanotifyEvent(mask=mask, fd=fd, pid=pid)
            offset += length

    def respond(self, fd: int, allow: bool) -> None:
        """Answer one permission event (FAN_DENY makes the exec fail with EPERM)."""
        os.write(self.fd, _RESPONSE.pack(fd, FAN_ALLOW if allow else FAN_DENY))

    def close(self) -> None:
        """Close the group: the kernel allows every permission event still pending."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def fd_path(fd: int) -> str:
    """The path of an event's file as /proc/self/fd names it (container-relative for a file
    reached through a container's mount namespace: its root is not reachable from ours)."""
    return os.readlink(f"/proc/self/fd/{fd}")
