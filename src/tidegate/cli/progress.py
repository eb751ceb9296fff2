"""Progress display for long work: rich bars on a terminal, nothing in CI or when piped."""

from __future__ import annotations

import os
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from tidegate.core.models import LayerInfo
from tidegate.image.interface import ResolvedImage


def wants_progress(stream: TextIO, quiet: bool) -> bool:
    """Bars only for a person at a terminal: not in CI, not when quiet, not when piped."""
    if quiet or os.environ.get("CI"):
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class ScanBars:
    """A `ScanProgress` that draws one bar per layer (bytes analysed) and an overall bar."""

    def __init__(self, stream: TextIO) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=Console(file=stream),
            transient=True,
        )
        self._tasks: dict[int, TaskID] = {}
        self._overall: TaskID | None = None

    def __enter__(self) -> ScanBars:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def resolved(self, image: ResolvedImage) -> None:
        self._overall = self._progress.add_task(
            f"layers of {image.info.reference}", total=len(image.layers) or 1
        )

    def layer_started(self, index: int, layer: LayerInfo) -> None:
        name = (layer.digest or "rootfs").removeprefix("sha256:")[:12]
        self._tasks[index] = self._progress.add_task(f"  {name}", total=None)

    def layer_bytes(self, index: int, n: int) -> None:
        self._progress.advance(self._tasks[index], n)

    def layer_done(self, index: int, *, cached: bool) -> None:
        task = self._tasks.pop(index, None)
        if task is not None:
            self._progress.remove_task(task)
        if cached:
            self._progress.console.print(f"  layer {index + 1}: from cache")
        if self._overall is not None:
            self._progress.advance(self._overall, 1)
