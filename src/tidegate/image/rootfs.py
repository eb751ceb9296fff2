"""`dir:ROOTFS`: an unpacked root filesystem, read as one pseudo-layer.

The walk never follows a symlink (symlinks are entries with their raw target, like in a layer),
never leaves the filesystem the root is on (no /proc, no bind mounts), and opens files with
O_NOFOLLOW only when an analyzer reads them, so a symlink swapped in during the scan cannot
redirect a read outside the root. Every regular file is a FILE entry, hard links included: there
is no "earlier in the layer" on a live filesystem.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from tidegate.core.errors import ImageNotFoundError
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import ImageInfo, LayerInfo, Unknown
from tidegate.image.interface import LayerItem, Limits, ResolvedImage
from tidegate.image.reference import ImageReference

ROOTFS_LAYER = LayerInfo(digest="", diff_id="", size=0, media_type="")
"""The one pseudo-layer of a root filesystem."""


class _LazyFile:
    """Opens the file on first read, so files no analyzer wants cost no open()."""

    __slots__ = ("_f", "_path")

    def __init__(self, path: str) -> None:
        self._path = path
        self._f: int | None = None

    def read(self, size: int = -1, /) -> bytes:
        if self._f is None:
            self._f = os.open(self._path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        if size < 0:
            chunks = []
            while chunk := os.read(self._f, 1024 * 1024):
                chunks.append(chunk)
            return b"".join(chunks)
        return os.read(self._f, size)

    def close(self) -> None:
        if self._f is not None:
            os.close(self._f)
            self._f = None


class RootfsSource:
    """An unpacked root filesystem as an `ImageSource`."""

    def __init__(self, ref: ImageReference, limits: Limits) -> None:
        assert ref.path is not None
        self._root = Path(ref.path)
        self._ref = ref
        self._limits = limits
        if not self._root.is_dir():
            raise ImageNotFoundError(f"{ref.raw}: {ref.path} is not a directory")

    def resolve(self) -> ResolvedImage:
        info = ImageInfo(
            reference=self._ref.raw, transport=self._ref.transport.value, layers=(ROOTFS_LAYER,)
        )
        return ResolvedImage(info=info, config={}, layers=(ROOTFS_LAYER,))

    def open_layer(self, layer: LayerInfo) -> AbstractContextManager[Iterator[LayerItem]]:
        return self._open()

    @contextmanager
    def _open(self) -> Iterator[Iterator[LayerItem]]:
        items = self._walk()
        try:
            yield items
        finally:
            items.close()

    def _walk(self) -> Generator[LayerItem, None, None]:
        root = os.fspath(self._root)
        root_dev = os.lstat(root).st_dev
        count = 0
        stack = [("/", root)]
        while stack:
            image_dir, host_dir = stack.pop()
            try:
                with os.scandir(host_dir) as it:
                    children = sorted(it, key=lambda e: e.name)
            except OSError as exc:
                yield Unknown(where=image_dir, reason=f"cannot list directory: {exc.strerror}")
                continue
            subdirs = []
            for child in children:
                count += 1
                if count > self._limits.max_entries:
                    yield Unknown(where="/", reason=f"more than {self._limits.max_entries} entries")
                    return
                image_path = image_dir.rstrip("/") + "/" + child.name
                item = self._item(child, image_path)
                if isinstance(item, Unknown):
                    yield item
                    continue
                entry, st_dev = item
                if entry.kind is EntryKind.FILE:
                    content = _LazyFile(child.path)
                    try:
                        yield entry, content
                    finally:
                        content.close()
                    continue
                yield entry, None
                if entry.kind is EntryKind.DIR and st_dev == root_dev:
                    subdirs.append((image_path, child.path))
            stack.extend(reversed(subdirs))

    @staticmethod
    def _item(child: os.DirEntry[str], image_path: str) -> tuple[Entry, int] | Unknown:
        try:
            st = child.stat(follow_symlinks=False)
        except OSError as exc:
            return Unknown(where=image_path, reason=f"cannot stat: {exc.strerror}")
        fmt = stat.S_IFMT(st.st_mode)
        link = None
        if fmt == stat.S_IFREG:
            kind = EntryKind.FILE
        elif fmt == stat.S_IFDIR:
            kind = EntryKind.DIR
        elif fmt == stat.S_IFLNK:
            kind = EntryKind.SYMLINK
            try:
                link = os.readlink(child.path)
            except OSError as exc:
                return Unknown(where=image_path, reason=f"cannot read link: {exc.strerror}")
        else:
            kind = EntryKind.OTHER
        entry = Entry(
            path=image_path,
            kind=kind,
            mode=stat.S_IMODE(st.st_mode),
            size=st.st_size if kind is EntryKind.FILE else 0,
            uid=st.st_uid,
            gid=st.st_gid,
            link_target=link,
            mtime=int(st.st_mtime),
        )
        return entry, st.st_dev

    def close(self) -> None:
        pass
