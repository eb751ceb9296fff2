"""How database builds report progress: a small protocol the CLI implements with rich bars.

Tasks are named by strings ("download PyPI", "import PyPI"); `total` is in the task's own unit
(bytes for downloads, records or documents for imports) and None when it is not known up front.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, task: str, total: int | None) -> None:
        """A task begins; `total` units are expected (None: unknown)."""

    def advance(self, task: str, n: int = 1) -> None:
        """`n` more units of the task are done."""

    def done(self, task: str) -> None:
        """The task is finished (successfully or not)."""


class NullProgress:
    """Reports nothing: the default when no one is watching."""

    def start(self, task: str, total: int | None) -> None:
        pass

    def advance(self, task: str, n: int = 1) -> None:
        pass

    def done(self, task: str) -> None:
        pass
